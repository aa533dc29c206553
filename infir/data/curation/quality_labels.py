"""Labels for training quality scorers: documented heuristics, or a teacher LLM when configured.

FineWeb-Edu labels 450k pages with Llama-3-70B on an additive 0-5 "educational
value" prompt and trains a cheap scorer on the labels; FineMath does the same
with a 1-5 math prompt. The paper (PAPER.md §2, stage 4) follows both. A labeler
here returns an integer score for one document:

- ``EduHeuristicLabeler``: the additive 0-5 prompt's five criteria approximated
  by measurable proxies (the embedded default, where no teacher model exists);
- ``MathHeuristicLabeler``: FineMath's 1-5 criteria, likewise;
- ``TeacherLabeler``: a local causal LM asked the additive prompt, its
  "Score: N" parsed (documents whose answer has no score are counted, not guessed).
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SENTENCE_END = re.compile(r"[.!?](?:[\"')\]]*)(?:\s|$)")

# Words that mark explanatory, instructional or technical writing (what the edu prompt rewards).
EDUCATIONAL_WORDS = frozenset("""
example examples define defined definition means meaning explain explains explained describe describes
concept concepts method methods function functions argument arguments parameter parameters return returns
value values type types object objects class classes module modules attribute attributes instance variable
variables data structure algorithm algorithms equation equations theorem proof formula compute computes
calculate result results therefore thus hence because since note default specified specify following
called call calls used use using instead whether each must may optional error errors exception raised
number numbers list lists string strings sequence element elements operation operations expression
""".split())

ENGLISH_STOP_WORDS = frozenset("the of and to a in is that it for as with be on are this by or not an from at "
                               "which can if you".split())

# Words typical of promotional, personal or chit-chat web text (what the edu prompt penalises).
PROMOTIONAL_WORDS = frozenset("""
i me my mine love loved lovely amazing awesome delicious gorgeous stunning favourite
favorite buy shop sale deal deals discount price cheap best perfect fantastic wonderful excited enjoy
enjoyed fun cozy yummy recipe trip vacation hotel celebrity fans fan gossip click subscribe follow
""".split())

_MATH_NOTATION = re.compile(r"\\(?:frac|sqrt|boxed|cdot|times|le|ge|sum|int|pi)|\d\s*[-+*/^=<>]\s*\d|\$")
_PROBLEM_CUE = re.compile(r"\?|\b(?:find|compute|calculate|determine|prove|show that|evaluate|solve|how many|"
                          r"how much|what is)\b", re.IGNORECASE)
_REASONING_CUE = re.compile(r"\b(?:so|thus|therefore|hence|since|because|then|which gives|we get|we have)\b",
                            re.IGNORECASE)
_FINAL_ANSWER = re.compile(r"\\boxed\{|####|\banswer is\b|\bAnswer:\s*\S|\bthe answer\b", re.IGNORECASE)
_EXAMPLE_CUE = re.compile(r"\bfor example\b|\be\.g\.|>>>|^\s{4,}\S|``|::\s*$", re.IGNORECASE | re.MULTILINE)


class QualityLabeler(ABC):
    """Gives one document an integer quality label (or ``None`` when it cannot)."""

    min_score: int = 0
    max_score: int = 5

    @abstractmethod
    def label(self, text: str) -> int | None: ...


class EduHeuristicLabeler(QualityLabeler):
    """0-5 additive educational value, one point per criterion of FineWeb-Edu's prompt:

    1. basic information: >= ``min_sentences`` sentences of English prose (stop words
       >= ``stop_word_rate`` of words; the edu prompt judges English pages);
    2. addresses concepts: educational words >= ``edu_word_rate`` of words;
    3. coherent and substantial: >= ``min_words`` words in >= 2 paragraphs;
    4. useful for teaching: contains an example (code sample, "for example", e.g.);
    5. outstanding: educational (point 2) without promotional/personal padding (promotional
       words < ``promo_word_rate`` of words).
    Rates are our calibration on the embedded crawl (documentation scores 4-5, general web
    pages 1-3, boilerplate/spam 0-1); the paper's teacher prompt is the reference.
    """

    def __init__(self, min_sentences: int = 3, stop_word_rate: float = 0.06, edu_word_rate: float = 0.04,
                 min_words: int = 120, promo_word_rate: float = 0.02) -> None:
        self.min_sentences = min_sentences
        self.stop_word_rate = stop_word_rate
        self.edu_word_rate = edu_word_rate
        self.min_words = min_words
        self.promo_word_rate = promo_word_rate

    def label(self, text: str) -> int:
        words = [w.lower() for w in _WORD.findall(text)]
        if not words:
            return 0
        n = len(words)
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        english = sum(w in ENGLISH_STOP_WORDS for w in words) / n >= self.stop_word_rate
        if not english or len(_SENTENCE_END.findall(text)) < self.min_sentences:
            return 0
        score = 1
        educational = sum(w in EDUCATIONAL_WORDS for w in words) / n >= self.edu_word_rate
        score += int(educational)
        score += int(n >= self.min_words and len(paragraphs) >= 2)
        score += int(bool(_EXAMPLE_CUE.search(text)))
        score += int(educational and sum(w in PROMOTIONAL_WORDS for w in words) / n < self.promo_word_rate)
        return score


class MathHeuristicLabeler(QualityLabeler):
    """1-5 math usefulness (FineMath's scale): 1 + a point each for a stated problem, math
    notation, worked reasoning (>= ``min_reasoning_cues`` connectives), and a final answer."""

    min_score = 1

    def __init__(self, min_reasoning_cues: int = 2) -> None:
        self.min_reasoning_cues = min_reasoning_cues

    def label(self, text: str) -> int:
        score = 1
        score += int(bool(_PROBLEM_CUE.search(text)))
        score += int(bool(_MATH_NOTATION.search(text)))
        score += int(len(_REASONING_CUE.findall(text)) + text.count("=") // 2 >= self.min_reasoning_cues)
        score += int(bool(_FINAL_ANSWER.search(text)))
        return score


EDU_PROMPT = """Below is an extract from a web page. Evaluate whether the page has a high educational value \
and could be useful in an educational setting for teaching from primary school to grade school levels using \
the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each \
criterion:
- Add 1 point if the extract provides some basic information relevant to educational topics, even if it \
includes some irrelevant or non-academic content like advertisements and promotional material.
- Add another point if the extract addresses certain elements pertinent to education but does not align \
closely with educational standards.
- Award a third point if the extract is appropriate for educational use and introduces key concepts relevant \
to school curricula.
- Grant a fourth point if the extract is highly relevant and beneficial for educational purposes.
- Bestow a fifth point if the extract is outstanding in its educational value.

The extract:
{text}

After examining the extract, conclude with the score using the format: "Educational score: <total points>"
"""

_SCORE = re.compile(r"score:\s*([0-5])", re.IGNORECASE)


class TeacherLabeler(QualityLabeler):
    """Labels from a local causal LM (``model_path``: an HF directory) answering ``prompt``.

    FineWeb-Edu's additive prompt (paraphrased above) is the default; answers without a
    parseable ``score: N`` return ``None`` and are counted by the quality stage.
    """

    def __init__(self, model_path: str, prompt: str = EDU_PROMPT, max_chars: int = 3000, max_new_tokens: int = 32,
                 min_score: int = 0, max_score: int = 5, device: str = "cpu") -> None:
        self.model_path = model_path
        self.prompt = prompt
        self.max_chars = max_chars
        self.max_new_tokens = max_new_tokens
        self.min_score, self.max_score = min_score, max_score
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
            self._model = AutoModelForCausalLM.from_pretrained(self.model_path).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise FileNotFoundError(f"TeacherLabeler.model_path: cannot load a causal LM and tokenizer from "
                                    f"{self.model_path!r} ({err})") from err

    def label(self, text: str) -> int | None:
        import torch

        if self._model is None:
            self._load()
        prompt = self.prompt.format(text=text[: self.max_chars])
        if getattr(self._tokenizer, "chat_template", None):
            prompt = self._tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                         add_generation_prompt=True)
        inputs = self._tokenizer(prompt, return_tensors="pt").to(self.device)
        pad_id = self._tokenizer.pad_token_id
        with torch.no_grad():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                       pad_token_id=self._tokenizer.eos_token_id if pad_id is None else pad_id)
        answer = self._tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return parse_teacher_score(answer, self.min_score, self.max_score)


def parse_teacher_score(answer: str, min_score: int = 0, max_score: int = 5) -> int | None:
    """The last ``score: N`` in a teacher's answer, if it is on the scale."""
    found = _SCORE.findall(answer)
    if not found:
        return None
    score = int(found[-1])
    return score if min_score <= score <= max_score else None
