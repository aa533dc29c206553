"""GSM8K (``question``, ``answer`` ending ``#### n``) as lm-evaluation-harness 0.4.x's ``gsm8k`` and ``gsm8k_cot``.

Two variants, selected by ``eval.tasks.gsm8k.variant`` (lm_eval/tasks/gsm8k/gsm8k.yaml and gsm8k-cot.yaml):

* ``gsm8k`` (default): "Question: ...\\nAnswer: <reasoning> #### n" exemplars, 5 per record drawn from the few-shot
  pool by lm-eval's seeded default sampler; stops at "Question:"; strict-match reads the number after "#### ".
* ``gsm8k_cot``: the 8 fixed chain-of-thought exemplars of Wei et al. (2022) as "Q: ...\\nA: ... The answer is n.",
  in order; stops at "Q:"; strict-match reads "The answer is n".

``strict_accuracy`` / ``flexible_accuracy`` are lm-eval's strict-match / flexible-extract filters scored by its
exact_match (a string comparison: "18.00" is not "18"), so they compare with published lm-eval numbers.
``strict_numeric_accuracy`` / ``flexible_numeric_accuracy`` compare the same kind of extraction as numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from infir.eval.answers.gsm8k import (
    extract_gsm8k_flexible,
    extract_gsm8k_strict,
    gsm8k_target,
    lm_eval_exact_match,
    lm_eval_filter,
    lm_eval_target,
)
from infir.eval.tasks.base import FIRST_N, RANDOM, THINK_SUFFIX, ScoringContext, Task, few_shot_block

log = logging.getLogger(__name__)

GSM8K_VARIANT, COT_VARIANT = "gsm8k", "gsm8k_cot"
# lm-eval's `until`: the next exemplar's header, and the literal EOS / chat-end strings of common tokenizers
# (a special token among them also ends generation by id, see infir.eval.generation).
_END_STRINGS = ("</s>", "<|im_end|>")
STOPS = {GSM8K_VARIANT: ("Question:", *_END_STRINGS), COT_VARIANT: ("Q:", *_END_STRINGS)}
DEFAULT_SHOTS = {GSM8K_VARIANT: 5, COT_VARIANT: 8}  # each yaml's num_fewshot
DEFAULT_SAMPLERS = {GSM8K_VARIANT: RANDOM, COT_VARIANT: FIRST_N}  # gsm8k: the default sampler; cot: first_n

# The chain-of-thought exemplars of Wei et al. (2022), as lm-eval's gsm8k-cot.yaml gives them (byte-exact).
COT_EXEMPLARS: tuple[dict[str, str], ...] = (
    {"question": "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they "
                 "are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "target": "There are 15 trees originally. Then there were 21 trees after some more were planted. So there "
               "must have been 21 - 15 = 6. The answer is 6."},
    {"question": "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking "
                 "lot?",
     "target": "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."},
    {"question": "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left "
                 "in total?",
     "target": "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
               "eating 35, they had 74 - 35 = 39. The answer is 39."},
    {"question": "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many "
                 "lollipops did Jason give to Denny?",
     "target": "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny "
               "20 - 12 = 8. The answer is 8."},
    {"question": "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys "
                 "does he have now?",
     "target": "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
               "5 + 4 = 9. The answer is 9."},
    {"question": "There were nine computers in the server room. Five more computers were installed each day, from "
                 "monday to thursday. How many computers are now in the server room?",
     "target": "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
               "computers were added. 9 + 20 is 29. The answer is 29."},
    {"question": "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How "
                 "many golf balls did he have at the end of wednesday?",
     "target": "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing "
               "2 more, he had 35 - 2 = 33 golf balls. The answer is 33."},
    {"question": "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "target": "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 "
               "dollars left. 23 - 15 is 8. The answer is 8."},
)


class GSM8K(Task):
    """lm-eval's GSM8K prompts, stops, shots and grading; instruct mode asks zero-shot with "Think step by step."."""

    name = "gsm8k"
    required_fields = ("question", "answer")
    variants = (GSM8K_VARIANT, COT_VARIANT)

    def __init__(self, records: Sequence[Mapping[str, Any]], fewshot: Sequence[Mapping[str, Any]] = (),
                 num_fewshot: int | None = None, variant: str | None = None, sampler: str | None = None,
                 **kwargs: Any) -> None:
        chosen = variant or GSM8K_VARIANT
        if chosen == COT_VARIANT:  # fixed exemplars, as the yaml; a configured pool has no "The answer is" text
            if fewshot:
                log.info("gsm8k_cot prompts with its %d fixed exemplars; the configured few-shot pool is not used",
                         len(COT_EXEMPLARS))
            fewshot = COT_EXEMPLARS
        super().__init__(records, fewshot, DEFAULT_SHOTS.get(chosen) if num_fewshot is None else num_fewshot,
                         variant=variant, sampler=sampler or DEFAULT_SAMPLERS.get(chosen), **kwargs)
        self.stop = STOPS[self.variant]

    def settings(self) -> dict[str, Any]:
        settings = super().settings()
        if self.variant == COT_VARIANT and self.num_fewshot:
            settings["fewshot_source"] = "builtin: the CoT exemplars of Wei et al. (2022)"
        return settings

    @staticmethod
    def normalise(record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "target": gsm8k_target(str(record["answer"]))}

    def _turn(self, question: str, answer: str | None) -> str:
        header = ("Q: {}\nA:" if self.variant == COT_VARIANT else "Question: {}\nAnswer:").format(question)
        return header if answer is None else f"{header} {answer}"

    def prompt(self, record: Mapping[str, Any]) -> str:
        answer_key = "target" if self.variant == COT_VARIANT else "answer"
        shots = [self._turn(r["question"], r[answer_key]) for r in self.exemplars(record)]
        return few_shot_block(shots, self._turn(record["question"], None))

    def instruction(self, record: Mapping[str, Any]) -> str:
        return f"{record['question']}\n{THINK_SUFFIX}"

    def score(self, records: Sequence[Mapping[str, Any]], outputs: Sequence[Sequence[str]],
              context: ScoringContext) -> list[dict[str, Any]]:
        scored = []
        for record, samples in zip(records, outputs):
            target = lm_eval_target(str(record["answer"]), self.variant)
            strict = [lm_eval_filter(o, "strict-match", self.variant) for o in samples]
            flexible = [lm_eval_filter(o, "flexible-extract", self.variant) for o in samples]
            # numeric extras: the same two extractions, compared as numbers ("18.00" is 18)
            strict_numeric = [extract_gsm8k_strict(o, self.variant) for o in samples]
            flexible_numeric = [extract_gsm8k_flexible(o, self.variant) for o in samples]
            n = len(samples)
            scored.append({
                "target": str(record["answer"]).split("####")[-1].strip(), "target_numeric": record["target"],
                "extracted_strict": strict[0], "extracted_flexible": flexible[0],
                "strict_accuracy": sum(lm_eval_exact_match(s, target) for s in strict) / n,
                "flexible_accuracy": sum(lm_eval_exact_match(f, target) for f in flexible) / n,
                "strict_numeric_accuracy": sum(s == record["target"] for s in strict_numeric) / n,
                "flexible_numeric_accuracy": sum(f == record["target"] for f in flexible_numeric) / n})
        return scored

    def metric_fields(self) -> tuple[str, ...]:
        return ("strict_accuracy", "flexible_accuracy", "strict_numeric_accuracy", "flexible_numeric_accuracy")
