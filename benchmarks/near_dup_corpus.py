"""Planted near-duplicate corpus: MinHash dedup recall and precision, code and prose measured separately.

    python benchmarks/near_dup_corpus.py [--docs 50000] [--pairs 2500] [--seed 0] [--ablations]

``generate_corpus`` builds 1-4 KB documents, half code and half prose, from the repository's embedded real text
(stdlib code blocks, Python docs paragraphs: :func:`piece_pool`, the pools ``benchmarks/curation.py`` assembles
its documents from), then plants near duplicates of some of them with realistic edits whose strength varies
per pair: code gets renamed identifiers, changed literals, inserted/deleted lines and reformatting (operator
and comma spacing, indentation, quote style, blank lines); prose gets word substitutions and typos, sentence
insertions/deletions, punctuation changes and re-wrapped lines. It also adds "related" documents, which keep
60-80 % of another document and replace the rest (exact word-5-gram Jaccard ~0.4-0.65): not near duplicates,
so removing one costs precision. ``score_dedup`` defines and computes recall and precision per domain; the
command line compares the dedup configuration (conf/curation/stages/dedup.yaml) with the earlier one.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import keyword
import random
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from infir.data.curation.dedup import CLUSTER_KEY, DEFAULT_TOKENIZER, tokens  # noqa: E402
from infir.data.documents import Document  # noqa: E402

DOMAINS = ("code", "prose")
SOURCE = "near_dup_bench"
# Related documents per planted pair: the precision test's hard negatives.
RELATED_PER_PAIR = 0.2
RELATED_MAX_JACCARD = 0.65
MIN_CHARS, MAX_CHARS = 1024, 4096
# Originals are drawn a little shorter than MAX_CHARS so that inserted lines/sentences keep copies under it.
_BASE_CHARS = (1100, 3600)
# Long pieces are cut at line breaks into chunks of at most this size: a document that is one truncated long
# piece would otherwise be a near duplicate of every other document starting with that piece.
_MAX_PIECE = 700
# Edit operations per 1,000 characters of a planted copy: (light, medium, heavy) ranges, drawn 65/31/4 %.
_RATES = {"code": ((0.2, 1.2), (1.2, 2.2), (2.2, 3.6)), "prose": ((0.2, 0.8), (0.8, 1.4), (1.4, 2.6))}


# ------------------------------------------------------------------------------------------------ text pools


@functools.cache
def piece_pool(domain: str) -> tuple[str, ...]:
    """Real text pieces over 80 characters, in source order (duplicates kept): ``prose`` = Python docs paragraphs,
    ``code`` = stdlib source split at blank lines, ``math`` = CHAMP train problems (held-out ones would be
    decontaminated). Cached: loading the sources takes ~2 s."""
    if domain == "prose":
        from infir.data.sources.python_docs import PythonDocsSource

        return tuple(p for d in PythonDocsSource().documents() for p in d.text.split("\n\n") if len(p) > 80)
    if domain == "code":
        from infir.data.sources.stdlib_code import StdlibCodeSource

        return tuple(c for d in StdlibCodeSource().documents() for c in d.text.split("\n\n") if len(c) > 80)
    if domain == "math":
        from infir.data.sources.champ import ChampSource

        return tuple(d.text for d in ChampSource().documents() if d.split == "train")
    raise ValueError(f"domain must be one of ('code', 'prose', 'math'), got {domain!r}")


def assemble_text(rng: random.Random, pool: Sequence[str], min_chars: int = 1000, max_chars: int = 4000) -> str:
    """Random pieces of ``pool`` joined by blank lines, cut to a length drawn from [min_chars, max_chars].

    The random draws (one ``randint``, then one ``choice`` per piece) are those of ``benchmarks/curation.py``'s
    ``make_documents``, so it can call this with ``piece_pool(domain)`` and build the same documents.
    """
    target, parts, size = rng.randint(min_chars, max_chars), [], 0
    while size < target:
        parts.append(rng.choice(pool))
        size += len(parts[-1]) + 2
    return "\n\n".join(parts)[:target]


@functools.cache
def _corpus_pool(domain: str) -> tuple[str, ...]:
    """Distinct pieces of :func:`piece_pool`, long ones cut at line breaks into chunks of <= _MAX_PIECE chars."""
    out: dict[str, None] = {}
    for piece in piece_pool(domain):
        chunk: list[str] = []
        size = 0
        for line in piece.split("\n"):
            if chunk and size + len(line) > _MAX_PIECE:
                out.setdefault("\n".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        text = "\n".join(chunk)
        if len(text) > 80:
            out.setdefault(text)
    return tuple(out)


@functools.cache
def _vocabulary() -> tuple[str, ...]:
    """Distinct lowercase words of 3+ letters in the prose pool: what substitutions draw from."""
    return tuple(sorted({w.lower() for p in _corpus_pool("prose") for w in re.findall(r"\b[A-Za-z]{3,}\b", p)}))


@functools.cache
def _code_lines() -> tuple[str, ...]:
    """Non-trivial stripped lines of the code pool: what line insertions draw from."""
    return tuple(sorted({ln.strip() for p in _corpus_pool("code") for ln in p.split("\n") if len(ln.strip()) > 12}))


# ---------------------------------------------------------------------------------------------------- edits

_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_STRING = re.compile(r"\"[^\"\n]{1,40}\"|'[^'\n]{1,40}'")
_NOT_RENAMED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {"self", "cls"}
_NAME_SUFFIXES = ("new", "tmp", "value", "obj", "v2", "data", "item", "result", "local", "ref")
_COMMENTS = ("# TODO: handle this case", "# noqa", "# see above", "# XXX: review", "# keep in sync", "pass",
             "# type: ignore", "# fall through")


def _rename(rng: random.Random, text: str) -> str:
    names = sorted({m.group() for m in _IDENT.finditer(text)} - _NOT_RENAMED)
    if not names:
        return text
    old = rng.choice(names)
    style = rng.random()
    if style < 0.4:
        new = f"{old}_{rng.choice(_NAME_SUFFIXES)}"
    elif style < 0.7:
        new = f"{rng.choice(_NAME_SUFFIXES)}_{old}"
    else:
        camel = "".join(p[:1].upper() + p[1:] for p in old.split("_") if p)
        new = camel[:1].lower() + camel[1:]
        new = new if new and new != old else f"{old}_x"
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def _change_literal(rng: random.Random, text: str) -> str:
    numbers, strings = list(_NUMBER.finditer(text)), list(_STRING.finditer(text))
    if strings and (not numbers or rng.random() < 0.5):
        m = rng.choice(strings)
        q = m.group()[0]
        return text[:m.start()] + q + rng.choice(_vocabulary()) + q + text[m.end():]
    if numbers:
        m = rng.choice(numbers)
        return text[:m.start()] + str(rng.randint(0, 4096)) + text[m.end():]
    return _rename(rng, text)


def _insert_line(rng: random.Random, lines: list[str]) -> None:
    i = rng.randrange(len(lines) + 1)
    near = lines[min(i, len(lines) - 1)] if lines else ""
    indent = near[:len(near) - len(near.lstrip())]
    new = rng.choice(_COMMENTS) if rng.random() < 0.3 else rng.choice(_code_lines())
    lines.insert(i, indent + new)


def _delete_line(rng: random.Random, lines: list[str]) -> None:
    candidates = [i for i, ln in enumerate(lines) if ln.strip()]
    if len(candidates) > 3:
        del lines[rng.choice(candidates)]


def _reformat_code(rng: random.Random, text: str) -> str:
    """One to three formatter-style changes: token sequence unchanged, raw text (and words) changed."""
    ops = rng.sample(range(6), rng.randint(1, 3))
    for op in ops:
        if op == 0:  # spaces around "=" and comparison/arithmetic operators, or none
            if rng.random() < 0.5:
                text = re.sub(r"(?<=[\w)\]'\"])(==|!=|<=|>=|\+=|-=|=|\+|<|>)(?=[\w(\['\"])", r" \1 ", text)
            else:
                text = re.sub(r" (==|!=|<=|>=|\+=|-=|=) ", r"\1", text)
        elif op == 1:  # space after commas, or none
            text = re.sub(r",(?=\S)", ", ", text) if rng.random() < 0.5 else text.replace(", ", ",")
        elif op == 2:  # re-indent: 4 spaces -> 2, or tabs
            unit = rng.choice(["  ", "\t"])
            text = re.sub(r"(?m)^((?:    )+)", lambda m: unit * (len(m.group(1)) // 4), text)
        elif op == 3:  # quote style
            text = text.replace("'", '"') if rng.random() < 0.5 else text.replace('"', "'")
        elif op == 4:  # spaces inside brackets
            text = re.sub(r"\((?=\S)", "( ", text).replace(")", " )") if rng.random() < 0.5 else \
                text.replace("( ", "(").replace(" )", ")")
        else:  # blank lines and trailing whitespace
            text = re.sub(r"\n{2,}", "\n", text) if rng.random() < 0.5 else re.sub(r"(?m)$", "  ", text, count=20)
    return text


def _near_duplicate_code(rng: random.Random, text: str, rate: float) -> str:
    n_ops = max(1, round(rate * len(text) / 1000))
    for _ in range(n_ops):
        op = rng.random()
        if op < 0.35:
            text = _rename(rng, text)
        elif op < 0.55:
            text = _change_literal(rng, text)
        else:
            lines = text.split("\n")
            (_insert_line if op < 0.8 else _delete_line)(rng, lines)
            text = "\n".join(lines)
    if rng.random() < 0.6:
        text = _reformat_code(rng, text)
    return text


_WORD = re.compile(r"\b[A-Za-z]{3,}\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _substitute_word(rng: random.Random, text: str) -> str:
    words = list(_WORD.finditer(text))
    if not words:
        return text
    m = rng.choice(words)
    w = m.group()
    if rng.random() < 0.2 and len(w) > 3:  # typo: two letters swapped
        i = rng.randrange(len(w) - 1)
        new = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    else:
        new = rng.choice(_vocabulary())
        new = new.capitalize() if w[0].isupper() else new
    return text[:m.start()] + new + text[m.end():]


def _sentences(rng: random.Random) -> list[str]:
    return _SENTENCE_END.split(rng.choice(_corpus_pool("prose")).replace("\n", " "))


def _edit_sentence(rng: random.Random, text: str, insert: bool) -> str:
    cuts = [m.start() for m in _SENTENCE_END.finditer(text)]
    if insert:
        new = rng.choice(_sentences(rng))[:200]
        at = rng.choice(cuts) if cuts else len(text)
        return text[:at] + " " + new + text[at:]
    spans = [(a, b) for a, b in zip(cuts, cuts[1:]) if b - a <= 300]  # one sentence, not a whole code sample
    if not spans:
        return _substitute_word(rng, text)
    a, b = rng.choice(spans)
    return text[:a] + text[b:]


def _punctuate(rng: random.Random, text: str) -> str:
    """Punctuation changes a copy-editor makes (commas, sentence marks, quotes, dashes) plus re-wrapped lines."""
    for _ in range(rng.randint(2, 10)):
        op = rng.random()
        if op < 0.25:  # drop a comma
            commas = [m.start() for m in re.finditer(r",(?= )", text)]
            if commas:
                i = rng.choice(commas)
                text = text[:i] + text[i + 1:]
        elif op < 0.45:  # add a comma after a word
            words = [m.end() for m in _WORD.finditer(text)]
            if words:
                i = rng.choice(words)
                text = text[:i] + "," + text[i:]
        elif op < 0.6:  # sentence mark
            ends = [m.start() for m in re.finditer(r"\.(?= [A-Z])", text)]
            if ends:
                i = rng.choice(ends)
                text = text[:i] + rng.choice(["!", ";", ":", "?"]) + text[i + 1:]
        elif op < 0.75:  # straight <-> curly quotes
            text = re.sub(r'"([^"\n]*)"', "\u201c\\1\u201d", text, count=3) if rng.random() < 0.5 else \
                text.replace("\u2019", "'")
        elif op < 0.85:  # dashes
            text = text.replace(" -- ", " \u2014 ") if rng.random() < 0.5 else text.replace(" - ", " -- ")
        else:  # re-wrap: line breaks become spaces or the reverse
            text = re.sub(r"(?<=\w)\n(?=\w)", " ", text) if rng.random() < 0.5 else \
                re.sub(r"(?<=\w) (?=\w)", "\n", text, count=rng.randint(3, 12))
    return text


def _near_duplicate_prose(rng: random.Random, text: str, rate: float) -> str:
    n_ops = max(1, round(rate * len(text) / 1000))
    for _ in range(n_ops):
        op = rng.random()
        if op < 0.7:
            text = _substitute_word(rng, text)
        else:
            text = _edit_sentence(rng, text, insert=op < 0.85)
    if rng.random() < 0.6:
        text = _punctuate(rng, text)
    return text


def _near_duplicate(rng: random.Random, text: str, domain: str) -> str:
    """An edited copy of ``text`` at a per-pair edit rate; redrawn (same rate) if it falls under MIN_CHARS."""
    make = _near_duplicate_code if domain == "code" else _near_duplicate_prose
    rate = _edit_rate(rng, domain)
    for _ in range(20):
        out = _fit(make(rng, text, rate))
        if len(out) >= MIN_CHARS:
            return out
    return out  # pragma: no cover - 20 short copies of a >= 1,100-char original


def _edit_rate(rng: random.Random, domain: str) -> float:
    """Edit operations per 1,000 characters: mostly light copies, a tail of heavy ones reaching below Jaccard 0.8
    (a code operation, e.g. one rename, touches fewer tokens than a prose sentence insertion: higher rates)."""
    light, medium, heavy = _RATES[domain]
    u = rng.random()
    return rng.uniform(*light) if u < 0.65 else rng.uniform(*medium) if u < 0.96 else rng.uniform(*heavy)


def _fit(text: str) -> str:
    """Cut a copy grown past MAX_CHARS at a line/word break (rare: originals are <= 3,600 chars)."""
    if len(text) <= MAX_CHARS:
        return text
    cut = max(text.rfind("\n", 0, MAX_CHARS), text.rfind(" ", 0, MAX_CHARS))
    return text[:cut if cut > MIN_CHARS else MAX_CHARS]


def _related(rng: random.Random, text: str, pool: Sequence[str]) -> str:
    """Keep 60-80 % of ``text`` (a prefix or a suffix, cut at whitespace) and replace the rest with new pieces:
    templated pages sharing a large part, which are not near duplicates (redrawn until the exact Jaccard is
    <= RELATED_MAX_JACCARD)."""
    for _ in range(20):
        out = _related_once(rng, text, pool)
        if word_ngram_jaccard(text, out) <= RELATED_MAX_JACCARD:
            return out
    raise RuntimeError("could not build a related document below RELATED_MAX_JACCARD")  # pragma: no cover


def _related_once(rng: random.Random, text: str, pool: Sequence[str]) -> str:
    keep = rng.uniform(0.6, 0.8)
    fresh = assemble_text(rng, pool, len(text) - int(keep * len(text)), len(text) - int(keep * len(text)))
    if rng.random() < 0.5:
        cut = text.rfind(" ", 0, int(keep * len(text))) + 1 or int(keep * len(text))
        out = text[:cut] + "\n\n" + fresh
    else:
        cut = text.find(" ", len(text) - int(keep * len(text)))
        out = fresh + "\n\n" + text[cut + 1 if cut >= 0 else len(text) - int(keep * len(text)):]
    return _fit(out)


# --------------------------------------------------------------------------------------------------- corpus


@dataclasses.dataclass
class NearDupCorpus:
    """Documents plus the planted near-duplicate pairs ``(original id, near-duplicate id, domain)``, and the
    related-but-distinct pairs ``(source id, related id, domain)`` that a deduplicator must not merge."""

    documents: list[Document]
    pairs: list[tuple[str, str, str]]
    related: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    # (doc id, ngram, tokenizer) -> n-gram set, shared by every score_dedup call on this corpus
    _ngrams: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)

    @functools.cached_property
    def by_id(self) -> dict[str, Document]:
        return {d.id: d for d in self.documents}

    def ngram_set(self, doc_id: str, ngram: int = 5, tokenizer: str = DEFAULT_TOKENIZER) -> set:
        key = (doc_id, ngram, tokenizer)
        if key not in self._ngrams:
            self._ngrams[key] = _ngram_set(self.by_id[doc_id].text, ngram, tokenizer)
        return self._ngrams[key]

    def jaccard(self, a: str, b: str, ngram: int = 5, tokenizer: str = DEFAULT_TOKENIZER) -> float:
        """Exact n-gram Jaccard of two documents of the corpus (see :func:`word_ngram_jaccard`), cached."""
        return _set_jaccard(self.ngram_set(a, ngram, tokenizer), self.ngram_set(b, ngram, tokenizer))


def generate_corpus(n_docs: int, n_pairs: int, seed: int = 0) -> NearDupCorpus:
    """``n_docs`` documents (half code, half prose; ids unique; 1-4 KB), ``n_pairs`` of them planted near
    duplicates (half code, half prose) of distinct originals, ``int(0.2 * n_pairs)`` related documents; all at
    random positions. Deterministic for a seed; 50k documents in ~5 s (~2 s of it loading the sources)."""
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
    n_related = int(RELATED_PER_PAIR * n_pairs)
    split = [(n // 2, n - n // 2) for n in (n_docs, n_pairs, n_related)]  # (code, prose) shares
    for d, domain in enumerate(DOMAINS):  # each domain needs an untouched original per copy and related document
        copies = split[1][d] + split[2][d]
        if split[0][d] < 2 * copies:
            raise ValueError(f"n_docs={n_docs} is too small for n_pairs={n_pairs}: {domain} needs >= {2 * copies} "
                             f"documents ({copies} planted/related copies and as many originals)")
    rng = random.Random(seed)
    records: list[tuple[str, str, str, int]] = []  # (text, domain, role, index of the original) in build order
    for d, domain in enumerate(DOMAINS):
        pool = _corpus_pool(domain)
        n_domain, pairs_d, related_d = split[0][d], split[1][d], split[2][d]
        start = len(records)
        for _ in range(n_domain - pairs_d - related_d):
            records.append((assemble_text(rng, pool, *_BASE_CHARS), domain, "base", -1))
        picks = rng.sample(range(start, len(records)), pairs_d + related_d)
        for k, i in enumerate(picks):
            original = records[i][0]
            if k < pairs_d:
                records.append((_near_duplicate(rng, original, domain), domain, "near_dup", i))
            else:
                records.append((_related(rng, original, pool), domain, "related", i))
    order = list(range(len(records)))
    rng.shuffle(order)
    ids = [""] * len(records)
    for position, i in enumerate(order):
        ids[i] = f"nd{position:06d}"
    documents = [Document(ids[i], records[i][0], SOURCE, records[i][1],
                          {"path": "bench.py", "language": "python"} if records[i][1] == "code" else {})
                 for i in order]
    pairs = [(ids[orig], ids[i], dom) for i, (_, dom, role, orig) in enumerate(records) if role == "near_dup"]
    related = [(ids[orig], ids[i], dom) for i, (_, dom, role, orig) in enumerate(records) if role == "related"]
    return NearDupCorpus(documents, sorted(pairs), sorted(related))


# ------------------------------------------------------------------------------------------------- scoring


def _ngram_set(text: str, n: int, tokenizer: str) -> set[tuple[bytes, ...]]:
    """The set of ``shingles(text, n, tokenizer)`` as token tuples (same sets, no string joins: ~5x faster)."""
    toks = tokens(text, tokenizer)
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return set(zip(*(toks[i:] for i in range(n))))


def _set_jaccard(x: set, y: set) -> float:
    return len(x & y) / len(x | y) if x or y else 1.0


def word_ngram_jaccard(a: str, b: str, n: int = 5, tokenizer: str = DEFAULT_TOKENIZER) -> float:
    """Exact Jaccard of the two texts' token n-gram sets, i.e. of the shingle sets the dedup uses
    (``infir.data.curation.dedup.shingles``: NFKC, lowercase, default tokenizer ``code_aware``, where
    identifiers, operators and brackets are tokens and prose punctuation separates like whitespace; pass
    ``tokenizer="words"`` for the earlier words with punctuation deleted). Two texts without shingles: 1.0."""
    return _set_jaccard(_ngram_set(a, n, tokenizer), _ngram_set(b, n, tokenizer))


@dataclasses.dataclass
class DomainScore:
    """Recall and precision of one domain; see :func:`score_dedup`."""

    domain: str
    pairs: int
    caught: int
    pairs_at_threshold: int
    caught_at_threshold: int
    dropped: int
    correct: int

    @property
    def recall(self) -> float:
        return self.caught / self.pairs if self.pairs else 1.0

    @property
    def recall_at_threshold(self) -> float:
        return self.caught_at_threshold / self.pairs_at_threshold if self.pairs_at_threshold else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.dropped if self.dropped else 1.0


def clusters_from_documents(docs: Iterable[Document]) -> dict[str, list[str]]:
    """Clusters (survivor id -> member ids) from documents carrying the dedup stage's ``dedup_cluster``
    metadata (kept and dropped documents together), for :func:`score_dedup`."""
    out: dict[str, list[str]] = {}
    for d in docs:
        if CLUSTER_KEY in d.metadata:
            out.setdefault(d.metadata[CLUSTER_KEY], []).append(d.id)
    return out


def score_dedup(corpus: NearDupCorpus, clusters: Mapping[str, Sequence[str]], threshold: float = 0.8,
                margin: float = 0.1, ngram: int = 5, tokenizer: str = DEFAULT_TOKENIZER) -> dict[str, DomainScore]:
    """Per-domain recall and precision of a dedup decision, ``clusters`` = survivor id -> member ids
    (``MinHashDeduplicator.clusters()``, or :func:`clusters_from_documents` on a stage's output).

    * recall = planted pairs whose two documents are in the same cluster / planted pairs, per domain of the
      pair; ``recall_at_threshold`` is the same over the planted pairs whose exact Jaccard
      (:func:`word_ngram_jaccard`, ``ngram``/``tokenizer``) is >= ``threshold``.
    * precision = correct drops / drops, per domain of the dropped document. The dropped documents are all
      cluster members but the survivor (exact and near duplicates alike). A drop is correct when some other
      member of its cluster is its planted partner or has exact Jaccard >= ``threshold - margin`` with it
      (default 0.7 for t = 0.8: a 112-permutation estimate has a standard deviation of ~0.04, so pairs within
      0.1 of t are what any MinHash threshold near t catches by chance; the related documents at <= 0.65 are
      wrong drops). Clusters are connected components, so the survivor need not be a drop's own partner.
    """
    level = threshold - margin
    cluster_of = {m: cid for cid, members in clusters.items() for m in members}
    for cid, members in clusters.items():
        if cid not in members:
            raise ValueError(f"cluster {cid!r}: its id must be its survivor, one of its members")
    partners: dict[str, set[str]] = {}
    for a, b, _ in corpus.pairs:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    docs = corpus.by_id

    def jaccard(x: str, y: str) -> float:
        return corpus.jaccard(x, y, ngram, tokenizer)

    scores = {d: DomainScore(d, 0, 0, 0, 0, 0, 0) for d in DOMAINS}
    for a, b, domain in corpus.pairs:
        s = scores[domain]
        same = a in cluster_of and cluster_of.get(a) == cluster_of.get(b)
        s.pairs += 1
        s.caught += same
        if jaccard(a, b) >= threshold:
            s.pairs_at_threshold += 1
            s.caught_at_threshold += same
    for cid, members in clusters.items():
        for m in members:
            if m == cid:
                continue
            s = scores[docs[m].domain]
            s.dropped += 1
            s.correct += any(o != m and (o in partners.get(m, ()) or jaccard(m, o) >= level) for o in members)
    return scores


# -------------------------------------------------------------------------------------------- command line

# The configuration before code-aware shingles and the binomial verification threshold: words with punctuation
# deleted, FineWeb's 14 bands x 8 rows, estimated Jaccard >= t.
OLD_SETTING = {"tokenizer": "words", "fn_rate": None, "fp_weight": 0.05, "fn_weight": 0.95}


def configured_setting() -> dict:
    """MinHashDeduplicator keyword arguments from conf/curation/stages/dedup.yaml (keys it accepts)."""
    from omegaconf import OmegaConf

    from infir.data.curation.dedup import MinHashDeduplicator

    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf/curation/stages/dedup.yaml"))
    accepted = inspect.signature(MinHashDeduplicator).parameters
    return {k: v for k, v in cfg.items() if k in accepted}


def run_dedup(corpus: NearDupCorpus, signatures: tuple | None = None,
              **setting) -> tuple[dict[str, list[str]], float]:
    """(clusters, CPU seconds of this process) of a fresh MinHashDeduplicator with ``setting`` over the corpus;
    ``signatures``: its ``signatures_and_keys`` of the corpus texts if already computed (same tokenizer,
    num_perm, ngram, seed). CPU time rather than wall time: fair on a shared machine."""
    from infir.data.curation.dedup import MinHashDeduplicator

    start = time.process_time()
    dedup = MinHashDeduplicator(**setting)
    sigs, keys = signatures or dedup.signatures_and_keys([d.text for d in corpus.documents])
    dedup.add([d.id for d in corpus.documents], sigs, keys)
    return dedup.clusters(), time.process_time() - start


def _quantiles(values: list[float]) -> str:
    v = sorted(values)
    return " ".join(f"p{q}={v[min(len(v) - 1, int(q / 100 * len(v)))]:.3f}" for q in (1, 5, 10, 25, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablations", action="store_true",
                        help="also run each change alone (tokenizer only, verification + LSH only)")
    args = parser.parse_args()
    new = configured_setting()
    threshold = new.get("threshold", 0.8)

    start = time.perf_counter()
    corpus = generate_corpus(args.docs, args.pairs, args.seed)
    kb = sum(len(d.text.encode()) for d in corpus.documents) / len(corpus.documents) / 1024
    print(f"{len(corpus.documents)} documents (mean {kb:.1f} KB), {len(corpus.pairs)} planted pairs, "
          f"{len(corpus.related)} related documents; generated in {time.perf_counter() - start:.1f}s")
    for tok in ("code_aware", "words"):
        for domain in DOMAINS:
            js = [corpus.jaccard(a, b, tokenizer=tok) for a, b, d in corpus.pairs if d == domain]
            rel = [corpus.jaccard(a, b, tokenizer=tok) for a, b, d in corpus.related if d == domain]
            print(f"  {tok:10s} {domain:5s} planted-pair Jaccard: >= {threshold} "
                  f"{sum(j >= threshold for j in js) / len(js):.3f}, {_quantiles(js)}; related: max "
                  f"{max(rel, default=0):.3f}")

    from infir.data.curation.dedup import MinHashDeduplicator, acceptance_probability, candidate_probability

    for name, setting in (("configured", new), ("before", {**new, **OLD_SETTING})):
        d = MinHashDeduplicator(**setting)
        accept = [acceptance_probability(j, d.num_perm, d.min_agree) for j in (threshold, threshold - 0.1)]
        print(f"  {name}: tokenizer {d.tokenizer}, LSH {d.bands} bands x {d.rows} rows (P(candidate) "
              f"{float(candidate_probability(threshold, d.bands, d.rows)):.3f} at J={threshold}), verification "
              f">= {d.min_agree}/{d.num_perm} agreements: rejects {1 - accept[0]:.3f} at J={threshold}, "
              f"accepts {accept[1]:.3f} at J={threshold - 0.1:.1f}")
    settings = {"configured (dedup.yaml)": new, "before (words, 14x8, est. >= t)": {**new, **OLD_SETTING}}
    if args.ablations:
        settings["code_aware tokenizer only"] = {**new, **OLD_SETTING, "tokenizer": "code_aware"}
        settings["verification + LSH only"] = {**new, "tokenizer": "words"}
    print(f"\nsetting                            domain  recall  recall(J>={threshold})  precision  dropped  CPU-s")
    for name, setting in settings.items():
        clusters, seconds = run_dedup(corpus, **setting)
        for domain, s in score_dedup(corpus, clusters, threshold).items():
            print(f"{name:34s} {domain:6s} {s.recall:7.4f} {s.recall_at_threshold:12.4f} {s.precision:14.4f} "
                  f"{s.dropped:7d} {seconds:8.1f}")


if __name__ == "__main__":
    main()
