"""Benchmark tasks without a model: record loading, prompts, scoring, pass@k, HumanEval in the sandbox."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infir.eval.embedded import procedural, procedural_choice
from infir.eval.passk import mean_pass_at_k, pass_at_k
from infir.records import read_rows, validate_rows
from infir.eval.suite import EvalSuite, build_task, write_results
from infir.eval.tasks import INSTRUCT, TASKS, ScoringContext
from infir.eval.tasks.code import HumanEval, code_from_reply
from infir.sandbox import Sandbox, SandboxLimits


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(SandboxLimits(wall_time_s=10, cpu_time_s=5), allow_code_execution=True, workers=2)


def _closed_form(n: int, c: int, k: int) -> float:
    return 1.0 - comb(n - c, k) / comb(n, k)


@pytest.mark.parametrize("n,c,k,expected", [
    (1, 1, 1, 1.0), (1, 0, 1, 0.0), (10, 3, 1, 0.3), (10, 0, 5, 0.0), (5, 5, 3, 1.0),
    (10, 1, 5, 0.5),          # 1 - C(9,5)/C(10,5) = 1 - 126/252
    (4, 2, 2, 5 / 6),         # 1 - C(2,2)/C(4,2) = 1 - 1/6
    (20, 2, 10, 1 - 45 / 190),  # 1 - C(18,10)/C(20,10) = 1 - 43758/184756 = 1 - 45/190
])
def test_pass_at_k_matches_the_closed_form(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert pass_at_k(n, c, k) == pytest.approx(_closed_form(n, c, k), abs=1e-12)


def test_pass_at_k_rejects_impossible_counts_and_averages_problems() -> None:
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match="correct"):
        pass_at_k(3, 4, 1)
    assert mean_pass_at_k([10, 10], [1, 0], 5) == pytest.approx(0.25)
    assert pass_at_k(200, 7, 100) == pytest.approx(_closed_form(200, 7, 100), rel=1e-9)


def test_canonical_humaneval_solutions_pass_and_wrong_ones_fail(sandbox: Sandbox) -> None:
    run = build_task("humaneval", {"source": {"embedded": "humaneval", "split": "test"}}, "base",
                     {"max_new_tokens": 8, "batch_size": 1})
    task = run.task
    assert len(task.records) == 164
    context = ScoringContext(sandbox=sandbox, ks=(1,))
    canonical = [[r["canonical_solution"]] for r in task.records]
    scored = task.score(task.records, canonical, context)
    failures = [(r["task_id"], s["verdict"], s["reason"]) for r, s in zip(task.records, scored) if s["passed"] != 1]
    assert failures == []
    assert task.aggregate(scored, context) == {"pass@1": 1.0}
    wrong = task.score(task.records[:3], [["    return None\n"]] * 3, context)
    assert [s["passed"] for s in wrong] == [0, 0, 0] and all(s["verdict"] == "fail" for s in wrong)
    hang = task.score(task.records[:1], [["    while True:\n        pass\n"]], context)
    assert hang[0]["verdict"] == "timeout"


def test_pass_at_k_over_several_samples(sandbox: Sandbox) -> None:
    run = build_task("humaneval", {"source": {"embedded": "humaneval", "split": "test"}, "limit": 2,
                                   "num_samples": 4, "temperature": 0.8, "ks": [1, 2]}, "base",
                     {"max_new_tokens": 8, "batch_size": 1})
    task = run.task
    good = [r["canonical_solution"] for r in task.records]
    outputs = [[good[0], "    return None\n", good[0], "    return None\n"], ["    return None\n"] * 3 + [good[1]]]
    scored = task.score(task.records, outputs, ScoringContext(sandbox=sandbox, ks=run.ks))
    assert [s["passed"] for s in scored] == [2, 1]
    metrics = task.aggregate(scored, ScoringContext(sandbox=sandbox, ks=run.ks))
    assert metrics["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert metrics["pass@2"] == pytest.approx((_closed_form(4, 2, 2) + _closed_form(4, 1, 2)) / 2)


def test_code_tasks_refuse_to_run_without_opt_in() -> None:
    with pytest.raises(PermissionError, match="allow_code_execution"):
        EvalSuite({"tasks": {"humaneval": {"source": {"embedded": "humaneval", "split": "test"}, "limit": 1}}})


MBPP_ROWS = [
    {"task_id": 2, "text": "Write a function to add two numbers.", "code": "def add(a, b):\n    return a + b",
     "test_list": ["assert add(1, 2) == 3"], "test_setup_code": ""},
    {"task_id": 3, "text": "Write a function to square a number.", "code": "def square(x):\n    return x * x",
     "test_list": ["assert square(3) == 9", "assert square(-2) == 4"], "test_setup_code": ""},
    {"task_id": 4, "text": "Write a function to reverse a string.", "code": "def rev(s):\n    return s[::-1]",
     "test_list": ["assert rev('ab') == 'ba'"], "test_setup_code": ""},
    {"task_id": 11, "text": "Write a function to count vowels.",
     "code": "def vowels(s):\n    return sum(c in 'aeiou' for c in s)",
     "test_list": ["assert vowels('banana') == 3", "assert vowels('xyz') == 0"], "test_setup_code": "import re"},
]


def test_mbpp_prompt_and_execution(tmp_path: Path, sandbox: Sandbox) -> None:
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MBPP_ROWS))
    run = build_task("mbpp", {"source": {"path": str(path)}, "fewshot": {"path": str(path)}, "num_fewshot": 3},
                     "base", {"max_new_tokens": 8, "batch_size": 1})
    task = run.task
    prompt = task.prompt(MBPP_ROWS[3])
    assert prompt.count("[BEGIN]") == 4 and prompt.count("[DONE]") == 3 and prompt.endswith("[BEGIN]\n")
    assert "assert vowels('banana') == 3" in prompt
    context = ScoringContext(sandbox=sandbox)
    scored = task.score([task.records[3]] * 2, [[MBPP_ROWS[3]["code"]], ["def vowels(s):\n    return 0"]], context)
    assert [s["passed"] for s in scored] == [1, 0]


def test_gsm8k_prompt_and_scoring() -> None:
    run = build_task("gsm8k", {"source": {"embedded": "procedural", "split": "heldout_eval"},
                               "fewshot": {"embedded": "procedural", "split": "train", "n": 64}},
                     "base", {"max_new_tokens": 8, "batch_size": 1})
    task = run.task
    record = task.records[0]
    prompt = task.prompt(record)
    # lm-eval `gsm8k`: 5 exemplars by default, each "Question: ...\nAnswer: <answer field>"
    assert prompt.count("Question:") == 6 and prompt.count("####") == 5 and prompt.endswith("Answer:")
    train_questions = {r["question"] for r in procedural("train", n=64)}
    assert record["question"] not in train_questions
    assert sum(q in prompt for q in train_questions) == 5
    answer = record["target"]
    outputs = [[f" Some steps.\n#### {answer}"], [f" The total is {answer}."], [" #### 12345678"]]
    scored = task.score([record] * 3, outputs, ScoringContext())
    assert [(s["strict_accuracy"], s["flexible_accuracy"]) for s in scored] == [(1, 1), (0, 1), (0, 0)]


def test_math_uses_boxed_answers_and_equivalence() -> None:
    rows = [{"problem": "What is 1/2 + 1/4?", "solution": "It is $\\boxed{\\frac{3}{4}}$."}]
    task = TASKS["math"](rows, num_fewshot=4)
    prompt = task.prompt(task.normalise(rows[0]))
    assert prompt.count("Problem:") == 5 and prompt.count("\\boxed") == 4
    record = task.normalise(rows[0])
    scored = task.score([record] * 3, [["So $\\boxed{0.75}$."], ["$\\boxed{\\dfrac{3}{4}}$"], ["$\\boxed{3/5}$"]],
                        ScoringContext())
    assert [s["accuracy"] for s in scored] == [1, 1, 0]


def test_mmlu_loglik_scoring_softmax_and_prompt() -> None:
    records = [TASKS["mmlu"].normalise(r) for r in procedural_choice(n=6, split="train")]
    same_subject = [r for r in procedural_choice(n=64, split="validation") if r["subject"] == records[1]["subject"]]
    task = TASKS["mmlu"](records[1:], [TASKS["mmlu"].normalise(r) for r in same_subject] + records, num_fewshot=1,
                         method="loglik")
    prompt = task.prompt(records[1])
    assert prompt.startswith("The following are multiple choice questions (with answers) about arithmetic")
    assert prompt.endswith("\nAnswer:") and prompt.count("Answer:") == 2
    assert task.choices(records[1]) == [" A", " B", " C", " D"]
    answer = records[1]["answer"]
    logprobs = [[-5.0] * 4 for _ in range(2)]
    logprobs[0][answer] = -1.0
    logprobs[1][(answer + 1) % 4] = -1.0
    scored = task.score_loglik(records[1:3], logprobs)
    assert scored[0]["accuracy"] == 1.0 and scored[1]["accuracy"] == 0.0
    assert sum(scored[0]["option_probs"]) == pytest.approx(1.0, abs=1e-5)
    assert scored[0]["prob_correct"] == pytest.approx(1 / (1 + 3 * 2.718281828 ** -4), rel=1e-6)


def test_multiple_choice_set_is_well_formed() -> None:
    records = procedural_choice(n=100)
    for r in records:
        assert len(r["choices"]) == 4 and len(set(r["choices"])) == 4
    positions = [r["answer"] for r in records]
    assert set(positions) == {0, 1, 2, 3}  # the correct option is not always in the same place


def test_instruct_mode_uses_the_chat_template_and_think_suffix() -> None:
    class ChatTokenizer:
        bos_token = "<s>"
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "<s>" + "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"

    suite = EvalSuite({"mode": "instruct", "tasks": {"gsm8k": {"source": {"embedded": "procedural"}, "limit": 1}}})
    task = suite.runs["gsm8k"].task
    text = suite.render(task, task.records[0], ChatTokenizer())
    assert text.startswith("[system]You are a helpful assistant.[user]")
    assert text.endswith("Think step by step.[assistant]") and "Question:" not in text
    assert suite.mode == INSTRUCT

    class PlainTokenizer:
        bos_token = "<s>"
        chat_template = None

    with pytest.raises(ValueError, match="chat template"):
        suite.render(task, task.records[0], PlainTokenizer())
    # a chat reply ends at EOS: the few-shot stop strings ("\n\n", "\ndef") would cut it
    assert suite.runs["gsm8k"].generation.stop == ()
    base = EvalSuite({"tasks": {"gsm8k": {"source": {"embedded": "procedural"}, "limit": 1, "num_fewshot": 0}}})
    # lm-eval's `until` for gsm8k: the next exemplar's header and the end-of-text strings, no blank line
    assert base.runs["gsm8k"].generation.stop == ("Question:", "</s>", "<|im_end|>")


def test_code_from_instruct_reply() -> None:
    reply = "Here it is:\n```python\ndef f():\n    return 1\n```\nDone."
    assert code_from_reply(reply) == "def f():\n    return 1\n"
    assert code_from_reply("def g(): pass") == "def g(): pass"
    task = HumanEval([{"task_id": "t", "prompt": "def f():\n", "test": "", "entry_point": "f"}], mode=INSTRUCT)
    assert task.program(task.records[0], reply).solution.startswith("def f():\n    return 1\n")


def test_records_from_jsonl_parquet_and_datasets_dirs(tmp_path: Path) -> None:
    rows = procedural(n=3, split="train")
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "g.parquet")
    from datasets import Dataset, DatasetDict

    DatasetDict({"test": Dataset.from_list(rows), "train": Dataset.from_list(rows[:1])}).save_to_disk(tmp_path / "ds")
    parquet_dir = tmp_path / "pq" / "main"
    parquet_dir.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), parquet_dir / "test-00000-of-00001.parquet")
    for source, split in [(tmp_path / "g.jsonl", None), (tmp_path / "g.parquet", None), (tmp_path / "ds", "test"),
                          (tmp_path / "pq", "test")]:
        got = read_rows(source, split)
        assert [r["question"] for r in got] == [r["question"] for r in rows], source
    assert len(read_rows(tmp_path / "ds", "train")) == 1
    with pytest.raises(ValueError, match="choose a split"):
        read_rows(tmp_path / "ds", None)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_rows(tmp_path / "missing.jsonl")


def test_malformed_records_are_counted_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = procedural(n=2, split="train")
    lines = [json.dumps(good[0]), "{not json", json.dumps({"question": "no answer"}),
             json.dumps({"question": "q", "answer": "no marker"}), json.dumps(good[1])]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    loaded = validate_rows(read_rows(path), TASKS["gsm8k"].required_fields, "eval.tasks.gsm8k",
                           TASKS["gsm8k"].normalise)
    assert len(loaded.records) == 2
    assert sum(loaded.skipped.values()) == 3 and loaded.skipped["missing field 'answer'"] == 1
    assert "bad.jsonl:2" in caplog.text
    with pytest.raises(ValueError, match="no usable record.*question"):
        validate_rows([{"x": 1}], TASKS["gsm8k"].required_fields, "eval.tasks.gsm8k")


def test_bad_task_config_is_named() -> None:
    with pytest.raises(ValueError, match="eval.tasks is empty"):
        EvalSuite({"tasks": {"gsm8k": {"enabled": False, "source": {"embedded": "procedural"}}}})
    assert EvalSuite({"tasks": {}, "nll": {"enabled": True}}).runs == {}  # an NLL-only evaluation is fine
    with pytest.raises(ValueError, match="unknown task 'gsm9k'"):
        EvalSuite({"tasks": {"gsm9k": {"source": {"embedded": "procedural"}}}})
    with pytest.raises(ValueError, match="eval.tasks.gsm8k: unknown key"):
        EvalSuite({"tasks": {"gsm8k": {"source": {"embedded": "procedural"}, "shots": 3}}})
    with pytest.raises(ValueError, match="num_fewshot=8 but only 0"):
        EvalSuite({"tasks": {"gsm8k": {"source": {"embedded": "procedural"}, "num_fewshot": 8}}})
    with pytest.raises(ValueError, match="pass@k needs num_samples >= k"):
        EvalSuite({"allow_code_execution": True,
                   "tasks": {"humaneval": {"source": {"embedded": "humaneval", "split": "test"}, "ks": [10]}}})


def test_results_files(tmp_path: Path) -> None:
    from infir.eval.suite import TaskResult

    results = {"gsm8k": TaskResult({"strict_accuracy": 0.5}, [{"prompt": "p", "output": "o", "extracted_strict": "1",
                                                               "strict_accuracy": 1}], {}, 1.0)}
    path = write_results(results, tmp_path, {"model": "m"})
    summary = json.loads(path.read_text())
    assert summary["tasks"]["gsm8k"]["metrics"] == {"strict_accuracy": 0.5}
    line = json.loads((tmp_path / "samples_gsm8k.jsonl").read_text())
    assert {"prompt", "output", "extracted_strict", "strict_accuracy"} <= set(line)


def test_split_selection_in_parquet_folders_matches_whole_names(tmp_path: Path) -> None:
    rows = procedural(n=2, split="train")
    for name in ("test-00000-of-00001.parquet", "contest-00000-of-00001.parquet"):
        pq.write_table(pa.Table.from_pylist(rows[:1] if name.startswith("test") else rows), tmp_path / name)
    assert len(read_rows(tmp_path, "test")) == 1  # "contest" is not the test split
