"""Prompts, exemplars, stops and GSM8K grading as lm-evaluation-harness 0.4.x builds them (no model needed).

Reference values were taken from lm-eval itself: the exemplar draws below are what its ``ContextSampler``
(lm_eval/api/samplers.py, seeded with the evaluator's default fewshot seed 1234) returns for a 12-row pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infir.eval.embedded import procedural
from infir.eval.suite import build_task
from infir.eval.tasks import ScoringContext
from infir.eval.tasks.gsm8k import COT_EXEMPLARS

DEFAULTS = {"max_new_tokens": 8, "batch_size": 1}
# lm-eval 0.4.12 ContextSampler(pool of 12, rnd=1234): sample(5) for the 1st..4th evaluated document
LM_EVAL_DRAWS_SEED_1234 = [[7, 1, 0, 10, 9], [10, 1, 11, 5, 3], [0, 11, 10, 5, 7], [9, 7, 2, 1, 11]]
LM_EVAL_FIRST_DRAW_SEED_7 = [5, 2, 6, 0, 1]


def _jsonl(path: Path, rows: list[dict]) -> dict:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"path": str(path)}


def _mmlu_row(subject: str, i: int, answer: int = 0) -> dict:
    return {"question": f"{subject} question {i}?", "choices": [f"{subject}-{i}-{c}" for c in "wxyz"],
            "answer": answer, "subject": subject}


# --- MMLU -------------------------------------------------------------------------------------------------------

def test_mmlu_exemplars_are_the_first_dev_rows_of_the_questions_own_subject(tmp_path: Path) -> None:
    subjects = ["anatomy", "astronomy", "college_physics"]
    dev = [_mmlu_row(s, i) for s in subjects for i in range(6)]  # like cais/mmlu "all": sorted by subject
    test = [_mmlu_row(s, 100 + i, answer=1) for i in range(2) for s in reversed(subjects)]
    run = build_task("mmlu", {"source": _jsonl(tmp_path / "test.jsonl", test),
                              "fewshot": _jsonl(tmp_path / "dev.jsonl", dev), "num_fewshot": 5, "method": "loglik"},
                     "base", DEFAULTS)
    task = run.task
    for record in task.records:
        subject = record["subject"]
        prompt = task.prompt(record)
        readable = subject.replace("_", " ")
        assert prompt.startswith(f"The following are multiple choice questions (with answers) about {readable}.\n\n")
        blocks = prompt.split("\n\n")[1:]
        assert [b.split("\n")[0] for b in blocks] == [f"{subject} question {i}?" for i in range(5)] + \
            [record["question"]]
        assert all(other not in prompt for other in subjects if other != subject)
        first = "\n".join([f"{subject} question 0?"] + [f"{L}. {subject}-0-{c}" for L, c in zip("ABCD", "wxyz")])
        assert f"{first}\nAnswer: A\n\n" in prompt and prompt.endswith("\nAnswer:")


def test_mmlu_subject_with_too_few_dev_rows_fails_naming_it(tmp_path: Path) -> None:
    dev = [_mmlu_row("anatomy", i) for i in range(5)] + [_mmlu_row("virology", i) for i in range(2)]
    test = [_mmlu_row("anatomy", 100), _mmlu_row("virology", 100)]
    with pytest.raises(ValueError, match="eval.tasks.mmlu.fewshot: 2 few-shot rows for subject 'virology'"):
        build_task("mmlu", {"source": _jsonl(tmp_path / "t.jsonl", test), "fewshot": _jsonl(tmp_path / "d.jsonl", dev),
                            "num_fewshot": 5}, "base", DEFAULTS)


# --- GSM8K: shots, prompts, stops -------------------------------------------------------------------------------

def _gsm8k(pool_n: int = 12, **cfg) -> tuple:
    run = build_task("gsm8k", {"source": {"embedded": "procedural", "split": "heldout_eval"},
                               "fewshot": {"embedded": "procedural", "split": "train", "n": pool_n}, **cfg},
                     "base", DEFAULTS)
    return run, procedural("train", n=pool_n)


def _gsm8k_prompt(shots: list[dict], question: str) -> str:
    return "".join(f"Question: {s['question']}\nAnswer: {s['answer']}\n\n" for s in shots) + \
        f"Question: {question}\nAnswer:"


def test_gsm8k_default_is_lm_evals_5_shots_drawn_per_question_with_seed_1234() -> None:
    run, pool = _gsm8k(limit=4)
    task = run.task
    assert (task.variant, task.num_fewshot, task.sampler, task.fewshot_seed) == ("gsm8k", 5, "random", 1234)
    for record, draw in zip(task.records, LM_EVAL_DRAWS_SEED_1234):
        assert task.prompt(record) == _gsm8k_prompt([pool[i] for i in draw], record["question"])
    limited, _ = _gsm8k(limit=2)  # a limit evaluates fewer questions, it does not change their exemplars
    assert [limited.task.prompt(r) for r in limited.task.records] == [task.prompt(r) for r in task.records[:2]]
    reseeded, _ = _gsm8k(limit=1, fewshot_seed=7)
    record = reseeded.task.records[0]
    assert reseeded.task.prompt(record) == _gsm8k_prompt([pool[i] for i in LM_EVAL_FIRST_DRAW_SEED_7],
                                                         record["question"])


def test_gsm8k_first_n_sampler_and_shot_count_are_selectable() -> None:
    run, pool = _gsm8k(limit=2, sampler="first_n", num_fewshot=3)
    for record in run.task.records:
        assert run.task.prompt(record) == _gsm8k_prompt(pool[:3], record["question"])
    with pytest.raises(ValueError, match="eval.tasks.gsm8k.sampler must be one of"):
        _gsm8k(sampler="balanced")


def test_gsm8k_stops_like_lm_eval_and_keeps_an_answer_after_a_blank_line() -> None:
    run, _ = _gsm8k(limit=1)
    assert run.generation.stop == ("Question:", "</s>", "<|im_end|>")  # no blank line: it would cut "\n\n#### n"
    record = run.task.records[0]
    scored = run.task.score([record], [[f" Step one.\n\nStep two.\n\n#### {record['target']}"]], ScoringContext())
    assert scored[0]["strict_accuracy"] == 1


def test_gsm8k_cot_variant_uses_the_8_fixed_exemplars_in_q_a_form() -> None:
    run, _ = _gsm8k(limit=1, variant="gsm8k_cot")
    task = run.task
    record = task.records[0]
    expected = "".join(f"Q: {e['question']}\nA: {e['target']}\n\n" for e in COT_EXEMPLARS) + \
        f"Q: {record['question']}\nA:"
    assert task.prompt(record) == expected
    assert expected.startswith("Q: There are 15 trees in the grove. Grove workers will plant trees in the grove "
                               "today. After they are done, there will be 21 trees. How many trees did the grove "
                               "workers plant today?\nA: There are 15 trees originally. Then there were 21 trees "
                               "after some more were planted. So there must have been 21 - 15 = 6. The answer is "
                               "6.\n\nQ: If there are 3 cars")
    assert (task.num_fewshot, task.sampler) == (8, "first_n") and len(COT_EXEMPLARS) == 8
    assert run.generation.stop == ("Q:", "</s>", "<|im_end|>")
    gold = record["target"]
    scored = task.score([record] * 3, [[f" Then {gold} - 0 = {gold}. The answer is {gold}."],
                                       [f" #### {gold}\nThe answer is -1."], [f" So {gold}"]], ScoringContext())
    assert [(s["strict_accuracy"], s["flexible_accuracy"]) for s in scored] == [(1, 1), (0, 0), (0, 1)]
    with pytest.raises(ValueError, match="eval.tasks.gsm8k.variant must be one of"):
        _gsm8k(variant="gsm8k_cot_zeroshot")


# --- GSM8K: grading -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["18.00", "18.0", "0018", "18.5"])
def test_gsm8k_default_metrics_are_lm_evals_string_match_and_numbers_are_a_separate_metric(written: str) -> None:
    record = {"question": "q", "answer": "Half of 36.\n#### 18", "target": "18"}
    run, _ = _gsm8k(limit=1)
    scored = run.task.score([record], [[f" Half of 36 is {written}.\n#### {written}"]], ScoringContext())[0]
    numeric = written != "18.5"
    assert (scored["strict_accuracy"], scored["flexible_accuracy"]) == (0, 0)  # lm-eval: "18.00" is not "18"
    assert (scored["strict_numeric_accuracy"], scored["flexible_numeric_accuracy"]) == (numeric, numeric)
    assert scored["extracted_strict"] == written and scored["target"] == "18"
    assert set(run.task.metric_fields()) == {"strict_accuracy", "flexible_accuracy", "strict_numeric_accuracy",
                                             "flexible_numeric_accuracy"}


def test_gsm8k_lm_eval_grading_of_commas_dollars_and_a_final_period() -> None:
    record = {"question": "q", "answer": "So 3000 in all.\n#### 3,000", "target": "3000"}
    run, _ = _gsm8k(limit=1)
    outputs = [[" #### 3,000"], [" #### $3000."], [" It costs $3,000."], [" It is 3000.00 in all."],
               [" #### -3000"]]
    scored = run.task.score([record] * len(outputs), outputs, ScoringContext())
    assert [(s["strict_accuracy"], s["flexible_accuracy"]) for s in scored] == \
        [(1, 1), (0, 1), (0, 1), (0, 0), (0, 0)]  # strict-match needs a digit right after "#### "
