"""Code rejection: run each candidate's code against the item's tests in the sandbox; only ``pass`` is kept.

The verdict is the hardened sandbox's (``infir.sandbox``): the test harness returns its token only after the
tests ran to their end, so a candidate that exits early (``sys.exit(0)``, ``os._exit(0)``), skips its tests or
fails them is rejected. Tests come from the seed (its docstring examples) or from the tests stage (generated,
then validated); either way they are validated here first: the item's reference solution, where it has one,
must pass them, else the item is rejected whole (``tests_invalid``) rather than judged by broken tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infir.data.documents import Document
from infir.synth.items import CANDIDATES, REFERENCE, item_format
from infir.synth.rewards.base import Reward, Verdict


def extract_code(reply: str) -> str:
    """The candidate's program: its last fenced python block, or the reply (as the instruct code eval reads it)."""
    from infir.eval.tasks.code import code_from_reply

    return code_from_reply(reply)


class SandboxTestsReward(Reward):
    """Accept a code candidate iff its extracted code passes the item's tests in the sandbox (score 1)."""

    name = "sandbox_tests"

    def __init__(self, sandbox: Mapping[str, Any] | None = None, allow_code_execution: bool = False) -> None:
        if not allow_code_execution:
            raise PermissionError("the sandbox_tests reward runs model-written code: set "
                                  "allow_code_execution: true on it (the code runs inside infir.sandbox)")
        self.sandbox_cfg = dict(sandbox or {})
        self._sandbox = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_sandbox": None}

    def fingerprint(self) -> dict:
        return {"name": self.name, "sandbox": self.sandbox_cfg}

    def sandbox(self):
        if self._sandbox is None:
            from infir.sandbox import Sandbox, SandboxLimits

            cfg = dict(self.sandbox_cfg)
            workers, cgroups = int(cfg.pop("workers", 2)), str(cfg.pop("cgroups", "auto"))
            self._sandbox = Sandbox(SandboxLimits.from_mapping(cfg), allow_code_execution=True, workers=workers,
                                    cgroups=cgroups)
            self._sandbox.check()
        return self._sandbox

    def applies_to(self, doc: Document) -> bool:
        return item_format(doc) == "code" and bool((doc.metadata.get(REFERENCE) or {}).get("tests"))

    def judge(self, docs: Sequence[Document]) -> list[list[Verdict]]:
        from infir.sandbox import SolutionAndTests

        sandbox = self.sandbox()
        references = [(i, doc.metadata[REFERENCE]) for i, doc in enumerate(docs)
                      if doc.metadata[REFERENCE].get("solution")]
        checks = sandbox.run_tests_many([SolutionAndTests(ref["solution"], ref["tests"]) for _, ref in references])
        invalid = {i for (i, _), check in zip(references, checks) if not check.passed}
        programs, owners = [], []
        for i, doc in enumerate(docs):
            if i not in invalid:
                for j, reply in enumerate(doc.metadata[CANDIDATES]):
                    programs.append(SolutionAndTests(extract_code(reply), doc.metadata[REFERENCE]["tests"]))
                    owners.append((i, j))
        results = dict(zip(owners, sandbox.run_tests_many(programs)))
        verdicts = []
        for i, doc in enumerate(docs):
            row = []
            for j in range(len(doc.metadata[CANDIDATES])):
                if i in invalid:
                    row.append(Verdict(0.0, False, "tests_invalid"))
                    continue
                result = results[(i, j)]
                row.append(Verdict(1.0, True) if result.passed else Verdict(0.0, False, f"sandbox_{result.verdict}"))
            verdicts.append(row)
        return verdicts
