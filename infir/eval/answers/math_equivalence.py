"""MATH answers: the last ``\\boxed{}``, Hendrycks et al.'s ``strip_string`` normalisation and symbolic equivalence.

Symbolic checks run sympy in a separate worker process (see ``_SymbolicWorker``) that is killed when it overruns
``timeout_s``; this works from any thread, unlike ``signal.alarm``, and also stops runaway big-integer arithmetic,
which holds the GIL and so cannot be interrupted from inside the process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

from infir.eval.answers.gsm8k import MAX_EXACT_DIGITS

logger = logging.getLogger(__name__)

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (braces balanced, escaped braces skipped), stripped.

    The space form ``\\boxed 5`` runs to the next ``$`` or line end. The LAST box decides: if it is unclosed or
    empty the answer is None (no fall back to an earlier box, which was usually an intermediate result).
    """
    last = None
    for m in _BOXED_RE.finditer(text):
        last = m
    if last is None:
        return None
    i = last.end()
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "{":
        end = _matching_brace(text, i)
        if end is None:
            return None
        content = text[i + 1:end].strip()
    else:
        content = re.split(r"[$\n]", text[i:], maxsplit=1)[0].strip()
    return content or None


def _matching_brace(text: str, open_index: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_index``; backslash-escaped characters are skipped."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


_TEXT_CMDS = r"(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|operatorname)"
_TRAILING_UNIT_RE = re.compile(r"\\" + _TEXT_CMDS + r"\s*\{[^{}]*[a-zA-Z][^{}]*\}(?:\s*\^\s*\{?\s*\d+\s*\}?)?\s*$")
_UNWRAP_TEXT_RE = re.compile(r"\\" + _TEXT_CMDS + r"\s*\{([^{}]*)\}")
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![a-zA-Z])|\\circ(?![a-zA-Z])|\u00b0|\\degree(?![a-zA-Z])")
_SIZING_RE = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)(?![a-zA-Z])")
_SPACING_RE = re.compile(r"(?<!\\)\\[,;:! ]")  # not the "\\" of "\\ 2" (a row break)
# The left side of an assignment: one (possibly subscripted) variable, or a function value "f(x)", "p(3)".
_LHS_RE = re.compile(r"\s*(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?(?:\s*\([^()=]*\))?\s*")
_SQRT_RE = re.compile(r"\\sqrt\s*([^\s{\[\\])")
_SPACES_RE = re.compile(r"(\\[a-zA-Z]+)?\s+(?=([a-zA-Z])?)")
_COMMAND_RE = re.compile(r"\\[a-zA-Z]+|\\.")
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# "\log_2 8": a one-character sub/superscript followed by a space and more; braced before spaces go ("\log_{2}8",
# not "\log_28").
_SHORT_SCRIPT_RE = re.compile(r"(?<!\\)([_^])([a-zA-Z0-9])\s+(?=[a-zA-Z0-9\\{(])")
# "x=1 \text{ or } x=2", "2 and 3": alternatives listed with a word are a comma list, as math-verify reads them.
# (Each separator run is matched from its start only, "(?<![\s,])", so long blank runs stay linear-time.)
_TEXT_CONJUNCTION_RE = re.compile(r"(?<![\s,])[\s,]*\\" + _TEXT_CMDS + r"\s*\{\s*(?:or|and)\s*\}\s*")
_CONJUNCTION_RE = re.compile(r"(?<![\s,])[\s,]+(?:or|and)\s+")
# A plain-word unit after a value: "4 units", "12 square units", "5 dollars" (words of >= 2 letters, so "4 x" stays).
_TRAILING_WORDS_RE = re.compile(r"(?<=[\d}])\s+[a-zA-Z]{2,}(?:\s+[a-zA-Z]{2,})*\s*$")


def normalise_math_answer(answer: str) -> str:
    """Hendrycks et al.'s MATH ``strip_string`` normalisation, so that equal answers usually compare equal as text.

    Steps, in order: drop line breaks, ``\\!`` and thin spaces; ``\\dfrac``/``\\tfrac`` -> ``\\frac``; drop
    ``\\left``/``\\right``; drop degree marks, ``\\$`` and ``$``; drop a trailing unit ``\\text{...}`` after a
    number and unwrap any other ``\\text{...}``; alternatives joined by "or"/"and" become a comma list; drop a
    trailing plain-word unit ("4 units"); drop ``\\%``; drop a trailing period; give bare decimals a leading
    zero; drop a short ``x =`` / ``f(x) =`` (or ``x \\in``) prefix, also from each item of a list of assignments;
    ``\\sqrt2`` -> ``\\sqrt{2}``; brace a one-character script before a space (``\\log_2 8`` -> ``\\log_{2}8``,
    not base 28); drop spaces; ``\\frac12`` ->
    ``\\frac{1}{2}``; "0.5" -> ``\\frac{1}{2}``; integer "a/b" -> ``\\frac{a}{b}``; thousands commas dropped
    from a plain number; "(A)" -> "A" for a multiple-choice letter. Unlike the original, ``\\\\`` is kept
    (it is a matrix row break) and a space between a command and a letter survives (``\\sin x``).
    """
    s = str(answer).replace("\n", " ").strip()
    s = s.replace("{,}", ",")
    s = _SPACING_RE.sub("", s)
    s = re.sub(r"\\[dt]frac(?![a-zA-Z])", r"\\frac", s)
    s = _SIZING_RE.sub("", s)
    s = _DEGREE_RE.sub("", s)
    s = s.replace("\\$", "").replace("$", "")
    s = _remove_trailing_units(s)
    s = _TEXT_CONJUNCTION_RE.sub(",", s)
    s = _UNWRAP_TEXT_RE.sub(r"\1", s)
    s = _CONJUNCTION_RE.sub(",", s)
    s = _TRAILING_WORDS_RE.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.strip()
    while s.endswith("."):
        s = s[:-1].rstrip()
    s = re.sub(r"(?<![\w})\]])\.(?=\d)", "0.", s)
    s = _drop_variable_prefix(s)
    s = _SQRT_RE.sub(r"\\sqrt{\1}", s)
    s = _SHORT_SCRIPT_RE.sub(r"\1{\2}", s)
    s = _remove_spaces(s)
    s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m:
        s = f"\\frac{{{m.group(1)}}}{{{m.group(2)}}}"
    m = re.fullmatch(r"\(([A-Z])\)", s)
    if m:
        s = m.group(1)
    return s


def _remove_trailing_units(s: str) -> str:
    """Drop a unit written as a trailing ``\\text{...}`` after a value containing a digit ("5\\text{ cm}^2")."""
    m = _TRAILING_UNIT_RE.search(s)
    if m and re.search(r"\d", s[:m.start()]):
        return s[:m.start()].rstrip()
    return s


def _drop_variable_prefix(s: str) -> str:
    """ "x = 3" -> "3", "f(x) = 2x" -> "2x", "x \\in [1,2]" -> "[1,2]" when the left side is one variable or
    function value; a list of assignments loses each prefix ("x=1, x=2" -> "1,2")."""
    pieces = s.split(",")
    if len(pieces) > 1 and all(piece.count("=") == 1 for piece in pieces):
        values = [_assigned_value(piece) for piece in pieces]
        if all(value is not None for value in values):
            return ",".join(values)  # type: ignore[arg-type]
    value = _assigned_value(s)
    if value is not None:
        return value
    m = re.match(r"\s*[a-zA-Z]\s*\\in(?![a-zA-Z])\s*", s)
    return s[m.end():] if m else s


def _assigned_value(s: str) -> str | None:
    """The right side of "lhs = value" when lhs is a short variable or function value, else None."""
    parts = s.split("=")
    if len(parts) == 2 and (len(parts[0]) <= 2 or _LHS_RE.fullmatch(parts[0])):
        return parts[1].strip()
    return None


def _remove_spaces(s: str) -> str:
    """Drop whitespace, except one space where dropping it would glue a command to a letter (``\\sin x``)."""
    return _SPACES_RE.sub(lambda m: (m.group(1) + " ") if m.group(1) and m.group(2) else (m.group(1) or ""), s)


def _fix_fracs(s: str) -> str:
    """Brace bare ``\\frac`` arguments: ``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac\\pi2`` -> ``\\frac{\\pi}{2}``.

    One left-to-right pass with a stack of open groups (linear time, no recursion, safe on deep nesting).
    """
    out: list[str] = []
    pending_after_close: list[int] = []  # per open "{": args its \frac still needs once the group closes
    need = 0  # args the \frac just read still needs, starting at the current position
    i, n = 0, len(s)
    while i < n:
        if s.startswith("\\frac", i) and not s[i + 5:i + 6].isalpha():
            out.append("\\frac")
            i += 5
            need = 2
            continue
        c = s[i]
        if need:
            if c == "{":
                pending_after_close.append(need - 1)
                need = 0
                out.append(c)
                i += 1
            else:
                m = _COMMAND_RE.match(s, i) if c == "\\" else None
                token = m.group(0) if m else c
                out.append("{" + token + "}")
                i += len(token)
                need -= 1
            continue
        if c == "\\":
            out.append(s[i:i + 2])
            i += 2
            continue
        if c == "{":
            pending_after_close.append(0)
        elif c == "}":
            need = pending_after_close.pop() if pending_after_close else 0
        out.append(c)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------------------------
# MATH answer extraction and equivalence
# --------------------------------------------------------------------------------------------------------------

_FINAL_ANSWER_RES = (
    re.compile(r"final answer is\s*:?\s*(.+)", re.IGNORECASE),
    re.compile(r"answer is\s*:?\s*(.+)", re.IGNORECASE),
    re.compile(r"final answer\s*:\s*(.+)", re.IGNORECASE),
)


def extract_math_answer(output: str) -> str | None:
    """The predicted answer of a MATH completion: the last ``\\boxed{}``, else Minerva's "The final answer is X".

    The fallback takes the last "final answer is" (then "answer is", then "Final Answer:") sentence; X is the
    ``$...$`` math right after it, or the text up to the end of the sentence, with ``$`` and a final period gone.
    """
    boxed = last_boxed(output)
    if boxed is not None:
        return boxed
    for pattern in _FINAL_ANSWER_RES:
        last = None
        for m in pattern.finditer(output):
            last = m
        if last is not None:
            answer = _sentence_answer(last.group(1))
            if answer:
                return answer
    return None


def _sentence_answer(text: str) -> str | None:
    """The answer at the start of ``text``: ``$...$``/``\\(...\\)`` math, else up to the sentence end."""
    text = text.strip()
    m = re.match(r"\$\$?(.+?)\$", text) or re.match(r"\\\((.+?)\\\)", text)
    if m:
        answer = m.group(1)
    else:
        answer = re.split(r"\.(?:\s|$)", text, maxsplit=1)[0]
    answer = answer.replace("$", "").strip()
    while answer.endswith("."):
        answer = answer[:-1].rstrip()
    return answer or None


_SYMBOLIC_MAX_CHARS = 200  # MATH answers are short; longer ones are compared as text only
_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")  # a plain word ("Monday"): sympy would read it as a product
_ENVIRONMENT_RE = re.compile(r"\\(?:begin|end)\{[a-zA-Z*]+\}")
_EXACT_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_EXACT_FRAC_RE = re.compile(r"(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}")
# A number written with decimals is a rounded value: it matches when both sides agree once rounded to this many
# decimal places (math-verify's float_rounding=6: "0.3333333" = 1/3, "0.333" != 1/3, "3.14159" != pi).
_DECIMAL_PLACES = 6
_EXACT_DIGITS = 15  # exact forms (sqrt(8) - 2 sqrt(2), cos(pi/2) - 0) must cancel to this precision (math-verify's)


def math_answers_equal(predicted: str, target: str, timeout_s: float = 2.0) -> bool:
    """True if a predicted MATH answer equals the target: same normalised text, same number, or sympy-equivalent.

    Order (cheapest first): ``normalise_math_answer`` strings equal; both plain numbers or numeric fractions
    equal (exact ``Fraction`` arithmetic, in process): exactly, or rounded to 6 decimal places when either is
    written with decimals, which are rounded values ("0.3333333" = 1/3, but 1000001 != 1000000); else, for answers of
    at most 200 characters that look like math (no plain words), parse both LaTeX answers with latex2sympy2_extended
    and compare in a worker process (numbers by value, expressions by ``simplify(a - b) == 0``, equations,
    intervals, sets, tuples and matrices element-wise). The worker is killed if it takes longer than
    ``timeout_s`` (plus the one-off start-up of the worker itself); that counts as not equal. Never raises.
    """
    try:
        if not isinstance(predicted, str) or not isinstance(target, str):
            return False
        p, t = normalise_math_answer(predicted), normalise_math_answer(target)
        if not p or not t:
            return False
        if p == t:
            return True
        p_num, t_num = _exact_number(p), _exact_number(t)
        if p_num is not None and t_num is not None:
            if "." in p or "." in t:
                return round(p_num, _DECIMAL_PLACES) == round(t_num, _DECIMAL_PLACES)
            return p_num == t_num
        if timeout_s <= 0 or not (_symbolic_candidate(p) and _symbolic_candidate(t)):
            return False
        return bool(_WORKER.compare(p, t, timeout_s))
    except Exception:  # malformed model output must score as wrong, not crash an evaluation
        logger.debug("math_answers_equal failed on %r vs %r", predicted[:100], target[:100], exc_info=True)
        return False


def _exact_number(s: str) -> Fraction | None:
    """A normalised answer that is a plain decimal or a ``\\frac`` of two, as an exact Fraction (None if huge)."""
    if len(s) > MAX_EXACT_DIGITS:
        return None
    if _EXACT_NUMBER_RE.fullmatch(s):
        return Fraction(Decimal(s))
    m = _EXACT_FRAC_RE.fullmatch(s)
    if m:
        den = Fraction(Decimal(m.group(3)))
        if den == 0:
            return None
        value = Fraction(Decimal(m.group(2))) / den
        return -value if m.group(1) else value
    return None


def _symbolic_candidate(s: str) -> bool:
    without_environments = _ENVIRONMENT_RE.sub("", s)  # "\\begin{pmatrix}" is not a word
    return len(s) <= _SYMBOLIC_MAX_CHARS and _WORD_RE.search(without_environments) is None


# --------------------------------------------------------------------------------------------------------------
# Symbolic comparison: runs inside the worker process only
# --------------------------------------------------------------------------------------------------------------

def _symbolic_equal(a: str, b: str) -> bool:
    """Parse two normalised LaTeX answers with latex2sympy2_extended and compare them structurally."""
    from latex2sympy2_extended import NormalizationConfig, latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig

    normalisation = NormalizationConfig(basic_latex=True, units=False, malformed_operators=False, nits=False,
                                        boxed="none", equations=False)
    conversion = ConversionConfig(lowercase_symbols=False)
    exprs = [latex2sympy(x, normalization_config=normalisation, conversion_config=conversion) for x in (a, b)]
    return _sympy_equal(exprs[0], exprs[1])


def _sympy_equal(x: Any, y: Any, depth: int = 0) -> bool:
    import sympy
    from sympy.core.relational import Equality, Relational

    if depth > 4:
        return False
    with contextlib.suppress(Exception):  # some sympy objects refuse == against others
        if x == y:
            return True
    # "x = 3" against "3": compare the value assigned to a single variable.
    if isinstance(x, Equality) and not isinstance(y, Relational) and x.lhs.is_Symbol:
        return _sympy_equal(x.rhs, y, depth + 1)
    if isinstance(y, Equality) and not isinstance(x, Relational) and y.lhs.is_Symbol:
        return _sympy_equal(x, y.rhs, depth + 1)
    if isinstance(x, Relational) and isinstance(y, Relational):
        if type(x) is type(y) and _sympy_equal(x.lhs, y.lhs, depth + 1) and _sympy_equal(x.rhs, y.rhs, depth + 1):
            return True
        if isinstance(x, Equality) and isinstance(y, Equality):
            dx, dy = x.lhs - x.rhs, y.lhs - y.rhs
            return _sympy_equal(dx, dy, depth + 1) or _sympy_equal(dx, -dy, depth + 1)
        return False
    if isinstance(x, sympy.Interval) and isinstance(y, sympy.Interval):
        return (x.left_open == y.left_open and x.right_open == y.right_open
                and _sympy_equal(x.left, y.left, depth + 1) and _sympy_equal(x.right, y.right, depth + 1))
    if isinstance(x, (sympy.FiniteSet, sympy.Union)) and isinstance(y, (sympy.FiniteSet, sympy.Union)):
        return type(x) is type(y) and _match_unordered(list(x.args), list(y.args), depth)
    for one, other in ((x, y), (y, x)):  # "{3}" against "3"
        if isinstance(one, sympy.FiniteSet) and len(one.args) == 1 and isinstance(other, sympy.Expr):
            return _sympy_equal(one.args[0], other, depth + 1)
    if isinstance(x, sympy.Tuple) and isinstance(y, sympy.Tuple):
        return len(x) == len(y) and all(_sympy_equal(u, v, depth + 1) for u, v in zip(x, y))
    # As math-verify: "1, 2" (a set) against "(1, 2)" (read as an open interval, or a tuple) compares the written
    # elements in order.
    xs, ys = _written_elements(x), _written_elements(y)
    if xs is not None and ys is not None and (isinstance(x, sympy.FiniteSet) or isinstance(y, sympy.FiniteSet)):
        return len(xs) == len(ys) and all(_sympy_equal(u, v, depth + 1) for u, v in zip(xs, ys))
    if isinstance(x, sympy.MatrixBase) and isinstance(y, sympy.MatrixBase):
        return x.shape == y.shape and all(_sympy_equal(u, v, depth + 1) for u, v in zip(x, y))
    if isinstance(x, sympy.Expr) and isinstance(y, sympy.Expr):
        return _expr_equal(x, y)
    return False


def _written_elements(x: Any) -> tuple[Any, ...] | None:
    """The elements of a list-like answer in the order written: a finite set, a tuple, an open interval (a, b)."""
    import sympy

    if isinstance(x, sympy.FiniteSet):
        return tuple(getattr(x, "_unsorted_args", x.args))  # latex2sympy2_extended's FiniteSet keeps the order
    if isinstance(x, sympy.Tuple):
        return tuple(x.args)
    if isinstance(x, sympy.Interval) and x.left_open and x.right_open:
        return (x.start, x.end)
    return None


def _match_unordered(xs: list[Any], ys: list[Any], depth: int) -> bool:
    if len(xs) != len(ys):
        return False
    remaining = list(ys)
    for u in xs:
        for k, v in enumerate(remaining):
            if _sympy_equal(u, v, depth + 1):
                del remaining[k]
                break
        else:
            return False
    return True


def _expr_equal(x: Any, y: Any) -> bool:
    """Numbers as math-verify compares them: a written decimal is rounded, exact forms must cancel; else simplify."""
    import sympy

    if not x.free_symbols and not y.free_symbols:
        if x.is_Float or y.is_Float:
            xv, yv = sympy.N(x, 30), sympy.N(y, 30)
            if not (xv.is_number and yv.is_number and xv.is_finite and yv.is_finite):
                return False
            return bool(xv.round(_DECIMAL_PLACES) == yv.round(_DECIMAL_PLACES))
        return bool((x - y).evalf(_EXACT_DIGITS, chop=True) == 0)
    return sympy.simplify(x - y) == 0


def _limit_worker_memory(limit_bytes: int = 4 << 30) -> None:
    """Cap the worker's address space so a runaway expression fails with MemoryError instead of swapping."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    except (ImportError, ValueError, OSError):
        pass


def _worker_main() -> None:
    """Worker loop: one JSON request per stdin line ({"a", "b"}), one JSON reply per stdout line ({"equal"})."""
    # Replies go to a private copy of stdout; anything a library prints goes to stderr, not into the protocol.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _limit_worker_memory()
    try:
        import latex2sympy2_extended  # noqa: F401
        import sympy  # noqa: F401
    except Exception as error:  # noqa: BLE001 - reported to the parent, which falls back to text comparison
        out.write(json.dumps({"ready": False, "error": repr(error)}) + "\n")
        out.flush()
        return
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
            equal = bool(_symbolic_equal(request["a"], request["b"]))
        except BaseException:  # noqa: BLE001 - MemoryError/RecursionError included: the answer is "not equal"
            equal = False
        out.write(json.dumps({"equal": equal}) + "\n")
        out.flush()


# --------------------------------------------------------------------------------------------------------------
# Symbolic comparison: the parent side
# --------------------------------------------------------------------------------------------------------------

# Loads this file as a standalone module (not through the infir package, whose import pulls in torch).
_WORKER_BOOTSTRAP = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_infir_answers_worker', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = module\n"
    "spec.loader.exec_module(module)\n"
    "module._worker_main()\n"
)
_WORKER_STARTUP_TIMEOUT_S = 60.0


class _SymbolicWorker:
    """A lazily started sympy worker process; a request that overruns its timeout gets the process killed.

    Why a process: sympy can loop or build astronomically large integers on adversarial input, and neither can
    be interrupted inside the interpreter from another thread (``signal.alarm`` is main-thread only and cannot
    preempt C code holding the GIL). Killing a process always works. Calls are serialised with a lock, so any
    thread may use it; after ``fork`` the child starts its own worker. POSIX only (``select`` on a pipe).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()
        self._disabled: str | None = None  # why symbolic comparison is unavailable in this process

    def compare(self, a: str, b: str, timeout_s: float) -> bool | None:
        """Symbolic equality of two normalised answers; None if unavailable or timed out."""
        with self._lock:
            if os.getpid() != self._owner_pid:  # forked: the inherited pipes belong to the parent's worker
                self._proc, self._owner_pid = None, os.getpid()
            if self._disabled is not None:
                return None
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
            if proc is None:
                return None
            try:
                proc.stdin.write((json.dumps({"a": a, "b": b}) + "\n").encode())
                proc.stdin.flush()
                reply = self._read_line(proc, timeout_s)
            except OSError:
                reply = None
            if reply is None:
                self._kill()
                return None
            return bool(reply.get("equal", False))

    def _start(self) -> subprocess.Popen[bytes] | None:
        self._kill()
        try:
            proc = subprocess.Popen([sys.executable, "-c", _WORKER_BOOTSTRAP, os.path.abspath(__file__)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    close_fds=True)
        except OSError as error:
            self._disable(f"cannot start the sympy worker: {error}")
            return None
        self._proc = proc
        ready = self._read_line(proc, _WORKER_STARTUP_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            self._kill()
            self._disable(f"sympy worker did not start: {(ready or {}).get('error', 'no reply')}")
            return None
        return proc

    def _disable(self, reason: str) -> None:
        self._disabled = reason
        logger.warning("%s; MATH answers are compared as normalised text and numbers only", reason)

    @staticmethod
    def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any] | None:
        """One JSON line from the worker within ``timeout_s``, or None (timeout, EOF or garbage)."""
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        buffer = b""
        while not buffer.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            buffer += chunk
        try:
            reply = json.loads(buffer)
        except ValueError:
            return None
        return reply if isinstance(reply, dict) else None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.kill()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def close(self) -> None:
        """Stop the worker (registered with ``atexit``)."""
        if os.getpid() == self._owner_pid:
            self._kill()


_WORKER = _SymbolicWorker()
atexit.register(_WORKER.close)
