"""Embedded SFT conversations (offline): procedural reasoning, CHAMP solutions, stdlib code tasks.

Every record is ``{"messages": [system, user, assistant], "source", "id", "split"}`` in the paper's instruct
style (PAPER.md §4): system "You are a helpful assistant.", the question ending "Think step by step.",
worded exactly as the instruct-mode eval prompts (``infir/eval/tasks``), so SFT trains the prompts the
evaluation asks. Split discipline, per source:

* ``procedural``: :func:`split_problems` with the eval harness's parameters (seed 0, 200 validation, 500
  held-out; ``infir/eval/embedded.py``), so ``heldout_eval`` is exactly the evaluated GSM8K-format set and
  no held-out question can reach ``train`` (the splits share no normalised question). The reply is the
  worked steps then ``#### n``, the GSM8K strict format.
* ``champ``: :class:`ChampSource`'s seeded split (30 % held-out, 10 % validation, seed 0), the one the
  pre-training mix and the eval use; the reply is ``format_solution`` (steps, then ``\\boxed{answer}``).
* ``code``: top-level documented functions of the stdlib corpus (``StdlibCodeSource``: same files, same
  path-keyed split). ``train`` comes from its train files only; the validation files, never pre-trained on,
  are split by function into ``validation`` and ``heldout_eval`` halves. The user asks for the function by
  signature, module and docstring summary; the reply is its source in a ```python block (the format the
  instruct code eval extracts). Bounded by ``max_items`` and ``max_chars``; the kept items are the first by
  a hash of ``path:name``, so the selection is deterministic and grows prefix-stably with ``max_items``.
"""

from __future__ import annotations

import ast
import inspect
import logging
from collections.abc import Mapping
from typing import Any

from infir.data.documents import HELDOUT_EVAL, SPLITS, TRAIN, VALIDATION
from infir.data.sources.champ import ChampSource, format_solution, load_champ_problems
from infir.data.sources.procedural import split_problems
from infir.data.sources.stdlib_code import StdlibCodeSource
from infir.data.splits import assign_split, unit_interval

log = logging.getLogger(__name__)

# The eval's instruct wording (infir/eval/suite.py SYSTEM_PROMPT, infir/eval/tasks/*.instruction); kept here
# as text so data code does not import the eval stack; tests/test_sft_data.py checks they agree.
SYSTEM_PROMPT = "You are a helpful assistant."
THINK_SUFFIX = "Think step by step."
BOXED_HINT = "Put the final answer in \\boxed{}."
CODE_REPLY_HINT = "Reply with the whole function in a ```python block."
SOURCES = ("procedural", "champ", "code")


def conversation(user: str, assistant: str, source: str, record_id: str, split: str) -> dict[str, Any]:
    """One SFT record in the ``messages`` format, with provenance."""
    return {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}],
            "source": source, "id": record_id, "split": split}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"SFT splits are {list(SPLITS)}, got {split!r}")


def procedural_conversations(split: str = TRAIN, n_train: int = 4000, seed: int = 0, n_validation: int = 200,
                             n_heldout: int = 500) -> list[dict[str, Any]]:
    """Word problems of ``split`` as GSM8K-style chats (steps, then ``#### n``)."""
    _check_split(split)
    sizes = {"n_train": n_train if split == TRAIN else 0, "n_validation": n_validation, "n_heldout": n_heldout}
    problems = split_problems(seed, **sizes)[split]
    return [conversation(f"{p.question}\n{THINK_SUFFIX}", p.solution, "procedural", f"procedural/{split}/{i}", split)
            for i, p in enumerate(problems)]


def champ_conversations(split: str = TRAIN, seed: int = 0, heldout_fraction: float = 0.3,
                        validation_fraction: float = 0.1) -> list[dict[str, Any]]:
    """CHAMP problems of ``split`` with their worked, boxed solutions."""
    _check_split(split)
    source = ChampSource(heldout_fraction=heldout_fraction, validation_fraction=validation_fraction, seed=seed)
    return [conversation(f"{p['problem']}\n{THINK_SUFFIX} {BOXED_HINT}", format_solution(p["steps"], p["answer"]),
                         "champ", f"champ/{p['id']}", split)
            for p in load_champ_problems() if source.split_of(p["id"]) == split]


def _summary(docstring: str) -> str:
    """The docstring's first paragraph on one line."""
    paragraph = inspect.cleandoc(docstring).split("\n\n")[0]
    return " ".join(paragraph.split())


def module_name(path: str) -> str:
    """The importable module of a stdlib path: ``importlib/metadata/__init__.py`` -> ``importlib.metadata``."""
    parts = path[: -len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def code_tasks(path: str, text: str, max_chars: int) -> list[tuple[str, str, str]]:
    """``(name, user, assistant)`` for each usable top-level function of one stdlib file.

    Usable: not decorated, not a dunder, a docstring whose summary has 20-400 characters, a body beyond the
    docstring, source of at most ``max_chars`` characters without a code fence.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.splitlines(keepends=True)
    tasks = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.decorator_list or node.name.startswith("__"):
            continue
        docstring = ast.get_docstring(node)
        if not docstring or len(node.body) < 2:
            continue
        summary = _summary(docstring)
        source = "".join(lines[node.lineno - 1 : node.end_lineno]).rstrip()
        if not 20 <= len(summary) <= 400 or len(source) > max_chars or "```" in source:
            continue
        signature = f"{node.name}({ast.unparse(node.args)})"
        user = (f"Write a Python function `{signature}` for the standard library module `{module_name(path)}`: "
                f"{summary}\n{CODE_REPLY_HINT}\n{THINK_SUFFIX}")
        tasks.append((node.name, user, f"```python\n{source}\n```"))
    return tasks


def code_conversations(split: str = TRAIN, max_items: int = 2000, max_chars: int = 2000,
                       validation_fraction: float = 0.05, max_bytes_per_file: int = 64_000,
                       max_files: int | None = None, root: str | None = None) -> list[dict[str, Any]]:
    """Function-writing tasks from the stdlib corpus; split by file as the pre-training source splits it."""
    _check_split(split)
    corpus = StdlibCodeSource(validation_fraction=validation_fraction, max_files=max_files,
                              max_bytes_per_file=max_bytes_per_file, root=root)
    candidates = []
    seen: set[str] = set()
    for document in corpus.documents():
        path = document.metadata["path"]
        for name, user, assistant in code_tasks(path, document.text, max_chars):
            key = f"{path}:{name}"
            item_split = document.split
            if item_split == VALIDATION:  # never pre-trained: half validation, half held-out
                item_split = assign_split(key, "sft-code", {HELDOUT_EVAL: 0.5}, VALIDATION)
            if item_split != split or assistant in seen:
                continue
            seen.add(assistant)
            candidates.append((unit_interval(key, "sft-code"), key, user, assistant))
    candidates.sort()
    return [conversation(user, assistant, "code", f"code/{key}", split)
            for _, key, user, assistant in candidates[:max_items]]


BUILDERS = {"procedural": procedural_conversations, "champ": champ_conversations, "code": code_conversations}
# data_mix source names (shared with pre-training, so debug=smoke and the same overrides shrink both) -> builders
BUILDER_OF_MIX_SOURCE = {"procedural": "procedural", "champ": "champ", "stdlib": "code"}


def sft_conversations(split: str = TRAIN, sources: Mapping[str, Mapping[str, Any] | None] | None = None
                      ) -> list[dict[str, Any]]:
    """All embedded SFT records of ``split``; ``sources`` maps a source name to its parameters (None: skip).

    Default: every source with its defaults. Order: by source, then each source's own deterministic order.
    """
    chosen = {name: {} for name in SOURCES} if sources is None else dict(sources)
    unknown = sorted(set(chosen) - set(BUILDERS))
    if unknown:
        raise ValueError(f"unknown embedded SFT source(s) {unknown}; known: {list(SOURCES)}")
    records: list[dict[str, Any]] = []
    for name, params in chosen.items():
        if params is None:
            continue
        part = BUILDERS[name](split=split, **dict(params))
        log.info("embedded SFT %s/%s: %d conversations", name, split, len(part))
        records += part
    return records
