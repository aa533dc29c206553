"""Seed instructions of the embedded default: training splits only, each with what verifies its replies.

* ``procedural``: word problems of the training split (:func:`split_problems` with the eval's parameters, so
  no held-out question can be a seed), reference answer in GSM8K form;
* ``champ``: CHAMP training-split problems, reference answer checked as MATH answers are;
* ``stdlib``: function-writing tasks from the stdlib corpus's training files. The reference solution is the
  function itself; its docstring examples, where it has any, become the tests (a doctest run that must try
  at least one example and fail none). Tests are validated against the reference in the sandbox by the
  rejection stage before any candidate is judged.

Each source keeps at most ``max_seeds`` items, the first by a hash of the item id, so a smaller run is a
prefix-stable subset of a larger one.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from infir.data.documents import TRAIN, Document
from infir.data.sources.select import keep_by_hash
from infir.synth.items import FORMAT, ORIGIN, REFERENCE

CODE_HINT_SUFFIX = "\nReply with the whole function in a ```python block.\nThink step by step."  # sft_embedded's
SOURCES = ("procedural", "champ", "stdlib")


def doctest_script(docstring: str, name: str, module: str) -> str | None:
    """A test script running ``docstring``'s examples against the function in scope; None without examples.

    The task asks for a function *of* ``module``, so the module's other names (its helpers and imports) are
    added to the namespace first, without replacing anything the solution defined: the reference then runs
    as it does in its module, and so does a candidate that calls the same helpers.
    """
    if ">>>" not in docstring:
        return None
    return "\n".join([
        "import doctest as _doctest, importlib as _importlib",
        f"assert {name!r} in globals(), 'the solution does not define {name}'",  # else the module's own would run
        f"for _k, _v in vars(_importlib.import_module({module!r})).items():",
        "    globals().setdefault(_k, _v)",
        f"_test = _doctest.DocTestParser().get_doctest({docstring!r}, dict(globals()), {name!r}, None, 0)",
        "_runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)",
        "_runner.run(_test, out=lambda _text: None)",
        "assert _runner.tries > 0, 'no doctest example ran'",
        "assert _runner.failures == 0, f'{_runner.failures} of {_runner.tries} doctest examples failed'",
        ""])


def _procedural(params: Mapping[str, Any]) -> list[Document]:
    from infir.data.sources.procedural import split_problems

    sizes = {"n_train": params.get("n_train", 4000), "n_validation": params.get("n_validation", 200),
             "n_heldout": params.get("n_heldout", 500)}
    problems = split_problems(params.get("seed", 0), **sizes)[TRAIN]
    return [Document(f"procedural/{i}", p.question, "procedural", "math",
                     {"split": TRAIN, ORIGIN: "seed", FORMAT: "gsm8k", "kind": p.kind, "steps": len(p.steps),
                      REFERENCE: {"answer": str(p.answer), "solution": p.solution}})
            for i, p in enumerate(problems)]


def _champ(params: Mapping[str, Any]) -> list[Document]:
    from infir.data.sources.champ import ChampSource, format_solution, load_champ_problems

    source = ChampSource(heldout_fraction=params.get("heldout_fraction", 0.3),
                         validation_fraction=params.get("validation_fraction", 0.1), seed=params.get("seed", 0))
    return [Document(f"champ/{p['id']}", p["problem"], "champ", "math",
                     {"split": TRAIN, ORIGIN: "seed", FORMAT: "boxed", "category": p["category"],
                      "steps": len(p["steps"]),
                      REFERENCE: {"answer": p["answer"], "solution": format_solution(p["steps"], p["answer"])}})
            for p in load_champ_problems() if source.split_of(p["id"]) == TRAIN]


def _stdlib(params: Mapping[str, Any]) -> list[Document]:
    from infir.data.sources.sft_embedded import code_conversations, module_name

    records = code_conversations(TRAIN, max_items=params.get("max_items", 100_000),
                                 max_chars=params.get("max_chars", 2000),
                                 validation_fraction=params.get("validation_fraction", 0.05))
    docs = []
    for record in records:
        user, reply = record["messages"][1]["content"], record["messages"][2]["content"]
        solution = reply.removeprefix("```python\n").removesuffix("\n```")
        function = next(n for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef))
        module = module_name(record["id"].removeprefix("code/").split(":")[0])
        tests = doctest_script(ast.get_docstring(function) or "", function.name, module)
        if params.get("require_tests", False) and tests is None:
            continue
        docs.append(Document(record["id"], user.removesuffix(CODE_HINT_SUFFIX), "stdlib", "code",
                             {"split": TRAIN, ORIGIN: "seed", FORMAT: "code",
                              REFERENCE: {"solution": solution, "tests": tests, "entry_point": function.name,
                                          "module": module}}))
    return docs


_BUILDERS = {"procedural": _procedural, "champ": _champ, "stdlib": _stdlib}


class EmbeddedSeeds:
    """Seed items from the embedded sources' training splits; ``sources`` maps a name to its parameters
    (``max_seeds`` caps it; None skips the source)."""

    name = "seeds"

    def __init__(self, sources: Mapping[str, Mapping[str, Any] | None]) -> None:
        unknown = sorted(set(sources) - set(_BUILDERS))
        if unknown:
            raise ValueError(f"synth.seeds.sources: unknown source(s) {unknown}; known: {list(SOURCES)}")
        self.sources = {name: dict(params or {}) for name, params in sources.items() if params is not None}
        if not self.sources:
            raise ValueError("synth.seeds.sources: every source is switched off; nothing to synthesise from")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.sources, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def documents(self) -> Iterator[Document]:
        for name, params in self.sources.items():
            docs = _BUILDERS[name]({k: v for k, v in params.items() if k != "max_seeds"})
            limit = params.get("max_seeds")
            if limit is not None:
                docs = keep_by_hash(docs, int(limit), lambda d: d.id, group=lambda d: d.source)
            yield from docs
