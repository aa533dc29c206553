"""GSM8K grading agrees with the real lm-evaluation-harness 0.4.13 on every row (100 %), both task variants.

The reference is lm-eval itself, installed with --no-deps (requirements-nodeps.txt): its own gsm8k.yaml /
gsm8k-cot.yaml are read from the installed package, their filter pipelines are built from lm-eval's filter
registry and scored with lm-eval's exact_match, exactly as its Task.process_results does for one generation.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml

from infir.eval.answers.gsm8k import LM_EVAL_FILTERS, lm_eval_exact_match, lm_eval_filter, lm_eval_target

lm_eval_metrics = pytest.importorskip("lm_eval.api.metrics", reason="lm_eval is a test reference (requirements-nodeps)")
lm_eval_filters = pytest.importorskip("lm_eval.filters")
lm_eval_utils = pytest.importorskip("lm_eval.utils")

YAMLS = {"gsm8k": "gsm8k.yaml", "gsm8k_cot": "gsm8k-cot.yaml"}

# Gold ``answer`` fields as the dataset writes them (reasoning with <<calc>> marks, then "#### n").
GOLD = {
    "72": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
    "18": "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18",
    "13.5": "Half of 27 is 27 / 2 = <<27/2=13.5>>13.5\n#### 13.5",
    "3000": "He earns 1,500 * 2 = <<1500*2=3000>>3,000 dollars.\n#### 3000",
    "1250": "The total is 1,000 + 250 = $<<1000+250=1250>>1,250\n#### 1,250",
    "7": "7 days in a week.\n#### 7",
    "0": "Nothing remains: 5 - 5 = <<5-5=0>>0\n#### 0",
    "-3": "The change is 2 - 5 = <<2-5=-3>>-3\n#### -3",
    "100000": "One lakh is 100,000.\n#### 100000",
    "5": "So 2 + 3 = <<2+3=5>>5\n#### 5",
    "0.25": "A quarter is 1/4 = 0.25.\n#### 0.25",
}

# (model output, gold key): formats models really produce, the issue's cases, and adversarial edges.
ROWS: list[tuple[Any, str]] = [
    ("Natalia sold 24 clips in May, so 48 + 24 = 72.\n#### 72", "72"),
    ("#### 72", "72"),
    ("#### 72.", "72"),
    ("#### 72..", "72"),
    ("The answer is 72.", "72"),
    ("The answer is 72", "72"),
    ("the answer is 72.", "72"),
    ("The answer is $72.", "72"),
    ("The answer is 72.\n#### 72", "72"),
    ("####72", "72"),
    ("##### 72", "72"),
    ("#### $72", "72"),
    ("#### 72 clips", "72"),
    ("#### 18.00", "18"),
    ("She makes $18.00 a day.", "18"),
    ("The answer is 18.00.", "18"),
    ("#### 13.50", "13.5"),
    ("#### 13.5", "13.5"),
    ("It is 13.50 now", "13.5"),
    ("#### 3,000.00", "3000"),
    ("#### 3,000", "3000"),
    ("He earns $3,000 in total.", "3000"),
    ("The answer is 3,000.", "3000"),
    ("#### $1,250.00", "1250"),
    ("The total is $1,250.", "1250"),
    ("#### 1,250", "1250"),
    ("#### 007", "7"),
    ("#### 7", "7"),
    ("There are 7 days", "7"),
    ("#### -0", "0"),
    ("#### 0", "0"),
    ("It leaves 0.", "0"),
    ("#### -3", "-3"),
    ("The change is -3 degrees", "-3"),
    ("The change is \u22123", "-3"),
    ("The change is 2-5=-3", "-3"),
    ("#### 1,00,000", "100000"),
    ("That is 1,00,000 rupees", "100000"),
    ("#### 100000", "100000"),
    ("2 + 3 = 5\n\n#### 5", "5"),
    ("2 + 3 = 5\n#### 5\n\nQuestion: next", "5"),
    ("#### 5\n#### 6", "5"),
    ("#### 6 wait, #### 5", "5"),
    ("So 2 + 3 = 5. Then 5 * 1 = 5", "5"),
    ("5 apples and 3 pears", "5"),
    ("$\\boxed{5}$", "5"),
    ("\\boxed{5}.", "5"),
    ("**Answer:** 5", "5"),
    ("Answer: 5.", "5"),
    ("Answer: 5...", "5"),
    ("It is 5. ...", "5"),
    ("#### 0.25", "0.25"),
    ("#### .25", "0.25"),
    ("A quarter is 1/4", "0.25"),
    ("#### 1/4", "0.25"),
    ("It is 25%", "0.25"),
    ("", "5"),
    ("no number at all", "5"),
    ("#### five", "5"),
    ("#### ", "5"),
    ("$$", "5"),
    (",,", "5"),
    ("-", "5"),
    ("#### ,5", "5"),
    ("#### 5,", "5"),
    ("#### 1.2.3", "5"),
    ("version 1.2.3", "5"),
    ("At 10:30, 5", "5"),
    ("The answer is 5 apples", "5"),
    ("The answer is: 5.", "5"),
    ("THE ANSWER IS 5.", "5"),
    ("#### 5\u00a0", "5"),
    ("#### 5\t\n", "5"),
    ("Total: $-5", "-3"),
    ("Loss: -$3", "-3"),
    ("x2 = 10, so x = 5.", "5"),
    ("1,2,3 and 5", "5"),
    ("[invalid]", "5"),
    (None, "5"),
]


def _reference_config(variant: str) -> dict[str, Any]:
    return yaml.safe_load((resources.files("lm_eval") / "tasks" / "gsm8k" / YAMLS[variant]).read_text())


def _reference_filter(config: dict[str, Any], filter_name: str, output: Any) -> str:
    """lm-eval's filter ensemble ``filter_name`` from the yaml, applied to one instance with one response."""
    (spec,) = [f for f in config["filter_list"] if f["name"] == filter_name]
    steps = [(step["function"], {k: v for k, v in step.items() if k != "function"}) for step in spec["filter"]]
    ensemble = lm_eval_filters.build_filter_ensemble(filter_name, steps)
    responses: Any = [[output]]
    for make_filter in ensemble.filters:
        responses = make_filter().apply(responses, [{}])
    return list(responses)[0]


def _reference_score(config: dict[str, Any], prediction: str, answer_field: str) -> bool:
    (metric,) = config["metric_list"]
    target = lm_eval_utils.apply_template(config["doc_to_target"], {"answer": answer_field})
    kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    return bool(lm_eval_metrics.exact_match_hf_evaluate(predictions=[prediction], references=[target], **kwargs)
                ["exact_match"])


@pytest.mark.parametrize("variant", list(YAMLS))
def test_grading_agrees_with_lm_eval_on_every_row(variant: str) -> None:
    config = _reference_config(variant)
    disagreements = []
    for output, gold in ROWS:
        for filter_name in LM_EVAL_FILTERS:
            expected_span = _reference_filter(config, filter_name, output)
            expected_correct = _reference_score(config, expected_span, GOLD[gold])
            span = lm_eval_filter(output, filter_name, variant)
            correct = lm_eval_exact_match(span, lm_eval_target(GOLD[gold], variant))
            if (span, correct) != (expected_span, expected_correct):
                disagreements.append((output, filter_name, span, correct, expected_span, expected_correct))
    assert disagreements == []


@pytest.mark.parametrize("variant", list(YAMLS))
def test_targets_are_what_doc_to_target_renders(variant: str) -> None:
    config = _reference_config(variant)
    for field in GOLD.values():
        assert lm_eval_target(field, variant) == lm_eval_utils.apply_template(config["doc_to_target"],
                                                                              {"answer": field})


# exact_match on raw string pairs, beyond what the filters can emit: markers, separators, trailing periods.
EXACT_MATCH_STRINGS = ["5", "5.", "5..", "5.\n", "$5", "5,", "#### 5", "a\n#### 5", "#### 4\n#### 5", "####5",
                       "###,# 5", "X", "x", "[invalid]", "[INVALID]", "", ".", "5\n", " 5", "5 ", "1,000", "1000",
                       "$1,000.", "18.00", "18", "-0", "0", "5\x00"]


def test_exact_match_agrees_with_lm_eval_on_string_pairs() -> None:
    (metric,) = _reference_config("gsm8k")["metric_list"]
    kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    for prediction in EXACT_MATCH_STRINGS:
        for target in EXACT_MATCH_STRINGS:
            expected = lm_eval_metrics.exact_match_hf_evaluate(predictions=[prediction], references=[target],
                                                               **kwargs)["exact_match"]
            assert lm_eval_exact_match(prediction, target) == bool(expected), (prediction, target)


def test_row_count_meets_the_issue() -> None:
    assert len(ROWS) >= 60
