"""Curation against datatrove on the same documents, interleaved, in CPU-seconds per document; dedup quality.

    python benchmarks/curation.py [--docs 50000] [--pairs 2500] [--rounds 8] [--rule-docs 2000] [--workers 2]
                                  [--recipe full] [--sections heuristics,signatures,dedup,recipe]
    pip install -r requirements-bench.txt   # the datatrove 0.10.1 peer; without it only ours runs (and says so)

Documents: the planted near-duplicate corpus of ``benchmarks/near_dup_corpus.py`` (``--docs`` documents with
``--pairs`` planted pairs) when that file is there, else 1-4 KB pieces of real embedded text (Python docs
prose, stdlib code, CHAMP math) with 5 % exact and 5 % near duplicates and 30 % general-web pages.

Sections, each on the same documents:

1. Heuristic rules: the heuristic stage's four web-text rules (GopherRepetition, GopherQuality, C4Quality,
   FineWebQuality; parameters from conf/curation/stages/heuristic.yaml) on the documents of the domains they
   are configured for (prose/web: on code they are not meant to run, and datatrove has no domain scope) vs
   datatrove's filters of the same names, chained in the same (FineWeb's) order and given our parameters where
   it has one. Ours runs through ``FilterStage`` (as the runner does); datatrove through each filter's ``run()``
   generator chained, i.e. its pipeline path without reader and writer (its per-document stats included).
   Ours is timed as configured (C4 ``rewrite_text=false``) and with C4's rewriting on, which is what datatrove
   always does. Also: how often the keep/drop decisions agree, drops per rule on each side, and each rule
   alone on the first ``--rule-docs`` of these documents (in a chain, what an earlier rule drops never reaches
   the later ones, and the two sides drop very different documents early).
2. MinHash signatures: ours (``signatures_and_keys``, the dedup stage's call: signatures and exact keys) vs
   datatrove's ``MinhashDedupSignature`` per-document signature (``get_shingles`` + ``get_signature`` in this
   process; its ``run()`` would also write and sort 14 bucket files, not timed) vs datasketch ``MinHash.bulk``.
3. Dedup quality (with the planted corpus): our dedup stage (conf/curation/stages/dedup.yaml) vs datatrove's
   full MinHash dedup (signature -> buckets -> cluster -> filter, ``LocalPipelineExecutor`` on local JSONL files
   in a temp dir, 1 worker): planted-pair recall and precision per domain, plus each side's CPU and wall time
   (one run each, not interleaved: datatrove's is a chain of jobs over files).
4. Our recipe, stage by stage in this process (CPU-s/doc), then the whole recipe through ``curate`` with
   ``--workers`` processes (wall docs/s; its CPU is spent in the worker processes).

Timing: the documents are cut into ``--rounds`` batches; ours and the peers run on every batch in an order
that rotates per batch (AB, BA, ...), so drift and the other tenants of a shared machine fall on all alike.
CPU time is ``time.process_time()``: this process's own CPU-seconds (its threads included), so CPU-s/doc is
per core and fair on a shared machine; wall time is printed next to it. OMP/BLAS pools are pinned to 1 thread.

Where the rules differ (``HEURISTIC_DIFFERENCES``, ``dedup_differences`` and benchmarks/minhash.py's
``signature_differences``, all printed): the project follows the Gopher paper and C4's reference code;
datatrove counts spaCy punctuation tokens as words in several ratios (its Gopher alpha-word rule drops most
punctuated prose), counts distinct case-sensitive stop words, drops blank lines in the FineWeb rules, and so
on. The decision agreement printed in section 1 measures what these differences add up to.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import gzip  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from benchmarks.minhash import (  # noqa: E402
    Timing,
    batches_of,
    datasketch_bulk,
    datatrove_signer,
    format_timings,
    interleave,
    patch_datatrove_xxhash,
    signature_differences,
)
from infir.data.curation.app import build_stages  # noqa: E402
from infir.data.curation.base import StageStats  # noqa: E402
from infir.data.curation import dedup as dedup_module  # noqa: E402
from infir.data.curation.dedup import CLUSTER_KEY  # noqa: E402
from infir.data.curation.heuristics import (  # noqa: E402
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    HeuristicFilter,
)
from infir.data.curation.pipeline import curate  # noqa: E402
from infir.data.curation.stages import FilterStage  # noqa: E402
from infir.data.documents import Document  # noqa: E402
from infir.data.sources.champ import ChampSource  # noqa: E402
from infir.data.sources.python_docs import PythonDocsSource  # noqa: E402
from infir.data.sources.raw_crawl import general_web_page  # noqa: E402
from infir.data.sources.stdlib_code import StdlibCodeSource  # noqa: E402
from infir.hydra_support import register_resolvers  # noqa: E402

HEURISTIC_YAML = REPO / "conf" / "curation" / "stages" / "heuristic.yaml"
DEDUP_YAML = REPO / "conf" / "curation" / "stages" / "dedup.yaml"
FOUR_RULES = (GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter, FineWebQualityFilter)

HEURISTIC_DIFFERENCES = """\
Heuristic rules, ours vs datatrove 0.10.1 (datatrove given our thresholds where it has the parameter):
  all four: datatrove's words are spaCy English tokens: punctuation marks are tokens of their own ("end." ->
    "end", ".") and contractions split ("don't" -> "do", "n't"); ours are whitespace tokens with surrounding
    punctuation stripped, pure-punctuation tokens dropped (Gopher: punctuation is not a word).
  GopherQuality:
    - alpha-word ratio (>= 0.8 of words contain a letter): datatrove divides by all tokens, punctuation tokens
      included, so ordinary punctuated prose scores lower; ours divides by words (Gopher paper, A.1.1).
    - '#' and ellipsis per word: datatrove's denominator counts punctuation tokens too (lower ratios).
    - stop words: datatrove wants >= 2 distinct stop words, case-sensitive ("The" does not count); ours
      >= 2 occurrences, case-insensitive.
    - bullet lines: datatrove '•' and '-' only; ours also '*', '‣', '◦', '▪', '●'.
  GopherRepetition:
    - top 2/3/4-gram: datatrove counts the top n-gram even when it occurs once (a short page can be dropped
      for "repeating" an n-gram it has once); ours counts only n-grams that occur twice or more.
    - duplicated 5..10-grams: datatrove joins an n-gram's words without a separator and, after a repeat,
      jumps n words ahead (those positions' n-grams are never seen); ours marks every word covered by any
      repeat occurrence (each word's characters counted once).
    - lines: datatrove splits the unstripped text on newline runs (a leading/trailing newline is an empty
      line); ours strips and drops empty lines. Empty text: datatrove drops it here, ours in GopherQuality.
  C4Quality (FineWeb's use: filter_no_terminal_punct=false; ours and datatrove here: 3 sentences, 5 words
    per line as C4's c4_utils.py -- datatrove's own defaults are 5 sentences, 3 words per line):
    - sentences: datatrove counts spaCy sentencizer sentences of each kept line; ours counts runs of . ! ?
      followed by a space or the end of the line (a kept line is at least one sentence).
    - words per line: datatrove counts them before removing citations, ours after.
    - datatrove always rewrites a kept page (kept lines joined by newlines) before FineWeb's rules see it;
      ours only with rewrite_text=true (the stage: false, so FineWeb's rules see the original layout).
  FineWebQuality (datatrove given our stop chars . ' " ! ?; its 0.10.1 default is its multi-script
    TERMINAL_PUNCTUATION set, without quotes):
    - datatrove drops blank lines before every line ratio; ours counts them (text.split("\\n")).
    - thresholds: datatrove drops line_punct < 0.12, short_line > 0.67, char_dup > 0.01; ours <= 0.12,
      >= 0.67, >= 0.01.
    - newlines per word: datatrove divides by spaCy tokens (punctuation included), ours by whitespace words."""

def dedup_differences(dedup: Any) -> str:
    """How our dedup decision differs from datatrove's, for the deduplicator the stage built."""
    min_agree = getattr(dedup, "min_agree", None) or getattr(dedup, "_min_agree", None)
    return f"""\
MinHash dedup, ours vs datatrove 0.10.1 ({dedup.num_perm} hashes, {dedup.ngram}-grams, seed {dedup.seed} on both):
  - LSH: datatrove {dedup.num_perm // 8} bands x 8 rows (FineWeb's); ours {dedup.bands} x {dedup.rows}.
  - datatrove makes every pair that shares a band a duplicate, unverified; ours first merges exact duplicates
    (hash of the normalised token sequence), then keeps an LSH candidate only if >= {min_agree} of its
    {dedup.num_perm} signature positions agree with the document's.
  - survivor: datatrove keeps the root of each union-find cluster (union by size); ours the smallest doc id.
  - signatures differ as in section 2; a page under {dedup.ngram} words has none in datatrove."""


# ------------------------------------------------------------------------------------------- documents


def make_documents(n: int, seed: int = 0, web_share: float = 0.3) -> list[Document]:
    """n documents of 1-4 KB built from real text pieces; 5 % exact and 5 % near duplicates, and
    ``web_share`` general-web pages (what recall drops; without them its negative sample is empty)."""
    rng = random.Random(seed)
    pools = {
        "prose": [p for d in PythonDocsSource().documents() for p in d.text.split("\n\n") if len(p) > 80],
        "code": [c for d in StdlibCodeSource().documents() for c in d.text.split("\n\n") if len(c) > 80],
        "math": [d.text for d in ChampSource().documents() if d.split == "train"],  # held-out would be decontaminated
    }
    docs: list[Document] = []
    while len(docs) < n:
        kind = rng.random()
        if docs and kind < 0.05:
            original = rng.choice(docs)
            docs.append(Document(f"d{len(docs)}", original.text, "bench", original.domain, dict(original.metadata)))
            continue
        if docs and kind < 0.10:
            original = rng.choice(docs)
            words = original.text.split(" ")
            for _ in range(max(1, len(words) // 200)):
                words[rng.randrange(len(words))] = "edited"
            docs.append(Document(f"d{len(docs)}", " ".join(words), "bench", original.domain, dict(original.metadata)))
            continue
        if kind < 0.10 + web_share:
            docs.append(Document(f"d{len(docs)}", general_web_page(rng)[0], "bench", "prose"))
            continue
        domain = rng.choice(sorted(pools))
        target, parts, size = rng.randint(1000, 4000), [], 0
        while size < target:
            parts.append(rng.choice(pools[domain]))
            size += len(parts[-1]) + 2
        docs.append(Document(f"d{len(docs)}", "\n\n".join(parts)[:target], "bench", domain,
                             {"path": "bench.py", "language": "python"} if domain == "code" else {}))
    return docs


def load_near_dup_corpus() -> Any | None:
    """``benchmarks/near_dup_corpus.py`` as a module, or None while it does not exist."""
    path = REPO / "benchmarks" / "near_dup_corpus.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("near_dup_corpus", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["near_dup_corpus"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def copy_documents(docs: Sequence[Document]) -> list[Document]:
    """Fresh copies (text and metadata): C4's rewriting mutates the documents it keeps."""
    return [dataclasses.replace(d, metadata=dict(d.metadata)) for d in docs]


def datatrove_available() -> bool:
    """datatrove and the spaCy tokenizer its filters and MinHash need (requirements-bench.txt) import."""
    try:
        importlib.import_module("datatrove.pipeline.filters")
        importlib.import_module("spacy")
    except ImportError:
        return False
    return True


def datatrove_documents(docs: Sequence[Document]) -> list:
    from datatrove.data import Document as DTDocument

    return [DTDocument(text=d.text, id=d.id, metadata={"domain": d.domain}) for d in docs]


# ------------------------------------------------------------------------------------------- 1. heuristics


def our_four_rules(rewrite_text: bool | None = None, keep_scope: bool = False) -> list[HeuristicFilter]:
    """The heuristic stage's four web-text rules with their configured parameters. Unless ``keep_scope``, they
    apply to every domain (``applies_to=None``): datatrove has no domain scope, so both judge every document
    they are given. ``rewrite_text`` overrides C4's."""
    filters = []
    for node in OmegaConf.load(HEURISTIC_YAML).filters:
        cls = next((c for c in FOUR_RULES if node._target_.endswith("." + c.__name__)), None)
        if cls is None:
            continue
        extra = {"rewrite_text": rewrite_text} if cls is C4QualityFilter and rewrite_text is not None else {}
        if not keep_scope:
            extra["applies_to"] = None
        filters.append(instantiate(node, _convert_="all", **extra))
    if [type(f) for f in filters] != list(FOUR_RULES):
        raise ValueError(f"{HEURISTIC_YAML}: expected {[c.__name__ for c in FOUR_RULES]} in this order, "
                         f"found {[type(f).__name__ for f in filters]}")
    return filters


def datatrove_four_rules(ours: Sequence[HeuristicFilter]) -> list:
    """datatrove's filters of the same names, in the same order, with our parameters where it has one."""
    from datatrove.pipeline.filters import (C4QualityFilter as DTC4, FineWebQualityFilter as DTFineWeb,
                                            GopherQualityFilter as DTGopherQuality,
                                            GopherRepetitionFilter as DTGopherRepetition)

    rep, qual, c4, fw = ours
    neg = lambda v: -1 if v is None else v  # noqa: E731  datatrove's "off" is -1
    return [
        DTGopherRepetition(dup_line_frac=rep.dup_line_frac, dup_para_frac=rep.dup_para_frac,
                           dup_line_char_frac=rep.dup_line_char_frac, dup_para_char_frac=rep.dup_para_char_frac,
                           top_n_grams=rep.top_n_grams, dup_n_grams=rep.dup_n_grams),
        DTGopherQuality(min_doc_words=qual.min_doc_words, max_doc_words=qual.max_doc_words,
                        min_avg_word_length=qual.min_avg_word_length, max_avg_word_length=qual.max_avg_word_length,
                        max_symbol_word_ratio=qual.max_symbol_word_ratio,
                        max_bullet_lines_ratio=qual.max_bullet_lines_ratio,
                        max_ellipsis_lines_ratio=qual.max_ellipsis_lines_ratio,
                        max_non_alpha_words_ratio=qual.min_alpha_words_ratio,  # datatrove's name for the same rule
                        min_stop_words=qual.min_stop_words, stop_words=sorted(qual.stop_words)),
        DTC4(split_paragraph=True, remove_citations=c4.remove_citations,
             filter_no_terminal_punct=c4.filter_no_terminal_punct, min_num_sentences=neg(c4.min_num_sentences),
             min_words_per_line=neg(c4.min_words_per_line), max_word_length=neg(c4.max_word_length),
             filter_lorem_ipsum=c4.filter_lorem_ipsum, filter_javascript=c4.filter_javascript,
             filter_curly_bracket=c4.filter_curly_bracket, filter_policy=c4.filter_policy),
        DTFineWeb(line_punct_thr=fw.line_punct_thr, line_punct_exclude_zero=fw.line_punct_exclude_zero,
                  stop_chars=fw.stop_chars, short_line_thr=fw.short_line_thr,
                  short_line_length=fw.short_line_length, char_duplicates_ratio=fw.char_duplicates_ratio,
                  new_line_ratio=fw.new_line_ratio),
    ]


def run_datatrove_chain(filters: Sequence, docs: Sequence) -> list[str]:
    """The kept ids after datatrove's filters, each one's ``run()`` generator fed by the previous one."""
    stream = iter(docs)
    for f in filters:
        stream = f.run(stream)
    return [d.id for d in stream]


def _rule_of(reason: str) -> str:
    if reason.startswith(("gopher_dup", "gopher_top")):
        return "GopherRepetition"
    return {"gopher": "GopherQuality", "c4": "C4Quality", "fineweb": "FineWebQuality"}.get(reason.split("_")[0],
                                                                                          reason)


def heuristic_section(all_docs: list[Document], rounds: int, rule_docs: int = 0) -> dict[str, Timing]:
    scoped = our_four_rules(keep_scope=True)
    docs = [d for d in all_docs if all(f.applies(d) for f in scoped)] or all_docs
    scope = sorted({d.domain for d in docs})
    ours_cfg, ours_rw = FilterStage("heuristic", our_four_rules()), FilterStage("heuristic", our_four_rules(True))
    runners: dict[str, Callable] = {
        "ours, as configured": lambda b: {d.id: r for d, r in ours_cfg(b).dropped},
        "ours, C4 rewrite_text=true": lambda b: {d.id: r for d, r in ours_rw(b).dropped},
    }
    prepare: dict[str, Callable] = {name: copy_documents for name in runners}
    dt_filters = None
    if datatrove_available():
        dt_filters = datatrove_four_rules(ours_cfg.filters)
        run_datatrove_chain(dt_filters, datatrove_documents(docs[:20]))  # warm-up: spaCy's tokenizer loads
        for f in dt_filters:
            f.stats = type(f.stats)(f.stats.name)  # forget the warm-up's counts
        runners["datatrove 4 filters"] = lambda b: run_datatrove_chain(dt_filters, b)
        prepare["datatrove 4 filters"] = datatrove_documents
    timings, outputs = interleave(runners, batches_of(docs, rounds), prepare)

    print(f"1. Heuristic rules (GopherRepetition -> GopherQuality -> C4Quality -> FineWebQuality) on the {len(docs)} "
          f"documents in their configured scope (domains {scope}), {rounds} interleaved rounds:")
    print(format_timings(timings, "ours, as configured", peers=["datatrove 4 filters"]))
    ours_drop = {k: v for batch in outputs["ours, as configured"] for k, v in batch.items()}
    ours_rules = Counter(map(_rule_of, ours_drop.values()))
    if dt_filters is None:
        print("datatrove is not installed (pip install -r requirements-bench.txt): ours only")
        print(f"ours drops {len(ours_drop)}: {dict(ours_rules)}\n")
        return timings
    dt = timings["datatrove 4 filters"]
    print(f"datatrove CPU-s/doc / ours: {dt.cpu_per_doc / timings['ours, as configured'].cpu_per_doc:.1f}x as "
          f"configured, {dt.cpu_per_doc / timings['ours, C4 rewrite_text=true'].cpu_per_doc:.1f}x with C4 "
          f"rewriting (target >= 10x); wall: "
          f"{dt.wall_per_doc / timings['ours, as configured'].wall_per_doc:.1f}x")
    dt_kept = {k for batch in outputs["datatrove 4 filters"] for k in batch}
    rw_drop = {k for batch in outputs["ours, C4 rewrite_text=true"] for k in batch}
    ids = [d.id for d in docs]
    dt_drop = {i for i in ids if i not in dt_kept}
    for label, ours_set in (("as configured", set(ours_drop)), ("with C4 rewriting", rw_drop)):
        agree = sum((i in ours_set) == (i in dt_drop) for i in ids)
        print(f"decisions, ours {label} vs datatrove: agree on {agree / len(ids):.1%} of documents "
              f"(both drop {len(ours_set & dt_drop)}, only ours drops {len(ours_set - dt_drop)}, only datatrove "
              f"drops {len(dt_drop - ours_set)}; both keep {len(ids) - len(ours_set | dt_drop)})")
    names = ["GopherRepetition", "GopherQuality", "C4Quality", "FineWebQuality"]
    print("drops per rule (the first rule that objects names the drop; top reasons):")
    for name, f in zip(names, dt_filters):
        reasons = Counter({k.removeprefix("dropped_"): int(v.total) for k, v in f.stats.stats.items()
                           if k.startswith("dropped_")})
        ours_reasons = Counter(r for r in ours_drop.values() if _rule_of(r) == name)
        print(f"  {name:<17} ours {ours_rules.get(name, 0):>6} {dict(ours_reasons.most_common(4))}\n"
              f"  {'':<17} dt   {sum(reasons.values()):>6} {dict(reasons.most_common(4))}")
    if rule_docs:
        per_rule_table(docs[:rule_docs], rounds)
    print(HEURISTIC_DIFFERENCES + "\n")
    return timings


def per_rule_table(docs: list[Document], rounds: int) -> None:
    """Each rule alone on every document (no chain: no earlier rule decides what a later one sees), interleaved."""
    ours = our_four_rules()
    peers = datatrove_four_rules(ours)
    names = ["GopherRepetition", "GopherQuality", "C4Quality", "FineWebQuality"]
    runners: dict[str, Callable] = {}
    prepare: dict[str, Callable] = {}
    for name, o, p in zip(names, ours, peers):
        runners[f"ours {name}"] = lambda b, o=o: sum(1 for d in b if o.drop_reason(d) is not None)
        runners[f"dt {name}"] = lambda b, p=p: len(b) - len(run_datatrove_chain([p], b))
        prepare[f"ours {name}"], prepare[f"dt {name}"] = copy_documents, datatrove_documents
    timings, outputs = interleave(runners, batches_of(docs, rounds), prepare)
    print(f"each rule alone on the first {len(docs)} of these documents (interleaved; datatrove re-tokenises per rule "
          f"here, where its chain reuses one spaCy tokenisation across consecutive rules):")
    print(f"  {'rule':<17}{'ours CPU-s/doc':>15}{'dt CPU-s/doc':>14}{'dt / ours':>11}{'ours drops':>12}"
          f"{'dt drops':>10}")
    for name in names:
        o, p = timings[f"ours {name}"], timings[f"dt {name}"]
        print(f"  {name:<17}{o.cpu_per_doc:>15.2e}{p.cpu_per_doc:>14.2e}{p.cpu_per_doc / o.cpu_per_doc:>10.1f}x"
              f"{sum(outputs[f'ours {name}']):>12}{sum(outputs[f'dt {name}']):>10}")


# ------------------------------------------------------------------------------------------- 2. signatures


def dedup_stage(dedup_cfg: Any) -> Any:
    """Our dedup stage as configured (conf/curation/stages/dedup.yaml)."""
    return instantiate(dedup_cfg, name="dedup", _convert_="all")


def signature_section(docs: list[Document], rounds: int, dedup_cfg: Any) -> None:
    stage = dedup_stage(dedup_cfg)
    num_perm, ngram, seed = int(stage.num_perm), int(stage.ngram), int(stage.seed)
    tokenizer = getattr(stage, "tokenizer", None) or getattr(dedup_module, "DEFAULT_TOKENIZER", "words")
    stage.summarise(docs[:200])  # warm-up: normalisation table, permutations
    texts_of = lambda batch: [d.text for d in batch]  # noqa: E731
    runners: dict[str, Callable] = {
        "ours (dedup stage summarise)": stage.summarise,  # signatures_and_keys: signatures + exact keys
        "datasketch MinHash.bulk": lambda b: datasketch_bulk(b, num_perm, ngram, seed,
                                                             getattr(stage, "tokenizer", None)),
    }
    prepare = {"datasketch MinHash.bulk": texts_of}
    signer = datatrove_signer(num_perm, ngram, seed) if datatrove_available() else None
    if signer is not None:
        runners["datatrove signature"] = signer
        prepare["datatrove signature"] = texts_of
    timings, _ = interleave(runners, batches_of(docs, rounds), prepare)
    print(f"2. MinHash signatures ({num_perm} hashes, {ngram}-grams of our {tokenizer!r} tokens), {len(docs)} docs, "
          f"{rounds} interleaved rounds (ours: signatures_and_keys, i.e. signatures plus 128-bit exact keys):")
    print(format_timings(timings, "ours (dedup stage summarise)"))
    if signer is None:
        print("datatrove is not installed (pip install -r requirements-bench.txt): no datatrove row")
    print(signature_differences(tokenizer) + "\n")


# ------------------------------------------------------------------------------------------- 3. dedup quality


def our_dedup(dedup_cfg: Any, docs: list[Document]) -> tuple[dict[str, list[str]], Timing, Any]:
    """Our dedup stage over all documents in this process (summarise -> decide -> apply, as the runner does
    with one shard): clusters as survivor id -> member ids, the timing, and the deduplicator."""
    stage = dedup_stage(dedup_cfg)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    decision = stage.decide([stage.summarise(docs)])
    output = stage.apply(docs, decision)
    timing = Timing(len(docs), time.process_time() - cpu0, time.perf_counter() - wall0)
    clusters: dict[str, list[str]] = defaultdict(list)
    for d in [*output.kept, *(doc for doc, _ in output.dropped)]:
        if CLUSTER_KEY in d.metadata:
            clusters[d.metadata[CLUSTER_KEY]].append(d.id)
    return dict(clusters), timing, decision


def datatrove_dedup(docs: list[Document], work: Path, num_perm: int, ngram: int, seed: int
                    ) -> tuple[dict[str, list[str]], Timing, dict[str, Timing]]:
    """datatrove's four MinHash jobs on local JSONL files, one worker each: clusters as survivor id -> member
    ids (the survivor is the member its filter kept), the total timing and each job's."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig(n_grams=ngram, num_buckets=num_perm // 8, hashes_per_bucket=8, seed=seed)
    (work / "input").mkdir(parents=True)
    with gzip.open(work / "input" / "00000.jsonl.gz", "wt") as f:
        for d in docs:
            f.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
    signature = MinhashDedupSignature(output_folder=str(work / "signatures"), config=config)
    patch_datatrove_xxhash(signature)
    jobs = {
        "signature": ([JsonlReader(str(work / "input")), signature], 1),
        "buckets": ([MinhashDedupBuckets(input_folder=str(work / "signatures"), output_folder=str(work / "buckets"),
                                         config=config)], config.num_buckets),
        "cluster": ([MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove"),
                                         config=config, save_cluster_id=True)], 1),
        "filter": ([JsonlReader(str(work / "input")),
                    MinhashDedupFilter(input_folder=str(work / "remove"), load_cluster_ids=True,
                                       exclusion_writer=JsonlWriter(str(work / "removed"))),
                    JsonlWriter(str(work / "kept"))], 1),
    }
    per_job: dict[str, Timing] = {}
    total = Timing(len(docs))
    with open(work / "datatrove.log", "w") as log, contextlib.redirect_stderr(log):
        for name, (pipeline, tasks) in jobs.items():
            executor = LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                                             logging_dir=str(work / "logs" / name))
            cpu0, wall0 = time.process_time(), time.perf_counter()
            executor.run()
            per_job[name] = Timing(len(docs), time.process_time() - cpu0, time.perf_counter() - wall0)
            total.cpu += per_job[name].cpu
            total.wall += per_job[name].wall
    members: dict[int, list[str]] = defaultdict(list)
    survivor: dict[int, str] = {}
    for folder in ("kept", "removed"):
        for path in sorted((work / folder).glob("*.jsonl*")):
            with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as f:
                for line in f:
                    record = json.loads(line)
                    cid = record.get("metadata", {}).get("minhash_cluster_id", -1)
                    if cid != -1:
                        members[cid].append(record["id"])
                        if folder == "kept":
                            survivor[cid] = record["id"]
    return {survivor[cid]: ids for cid, ids in members.items()}, total, per_job


def format_scores(scores: dict[str, Any]) -> str:
    lines = [f"    {'domain':<7}{'pairs':>6}{'recall':>8}{'recall(J>=t)':>14}{'precision':>11}{'dropped':>9}"]
    for dom, s in scores.items():
        lines.append(f"    {dom:<7}{s.pairs:>6}{s.recall:>8.1%}{s.recall_at_threshold:>14.1%}{s.precision:>11.1%}"
                     f"{s.dropped:>9}")
    return "\n".join(lines)


def dedup_section(corpus: Any, module: Any, dedup_cfg: Any) -> None:
    docs = corpus.documents
    score = getattr(module, "score_dedup", None)
    if score is None:
        raise AttributeError(f"{module.__file__}: expected score_dedup(corpus, clusters, threshold)")
    ours, ours_t, decision = our_dedup(dedup_cfg, docs)
    print(f"3. Dedup quality on the {len(corpus.pairs)} planted pairs (+ {len(corpus.related)} related, not "
          f"duplicate, documents) of {len(docs)} docs; scored by near_dup_corpus.score_dedup at t = "
          f"{decision.threshold} (recall: planted pairs put in one cluster; precision: drops with a planted "
          f"partner or exact Jaccard >= t - 0.1 in their cluster):")
    results = {"ours": (ours, ours_t)}
    per_job = {}
    if datatrove_available():
        with tempfile.TemporaryDirectory(prefix="datatrove_dedup_") as tmp:
            dt, dt_t, per_job = datatrove_dedup(docs, Path(tmp), decision.num_perm, decision.ngram, decision.seed)
        results["datatrove"] = (dt, dt_t)
    else:
        print("datatrove is not installed (pip install -r requirements-bench.txt): ours only")
    for name, (clusters, t) in results.items():
        print(f"  {name}: {t.cpu_per_doc:.2e} CPU-s/doc, {t.wall_per_doc:.2e} wall-s/doc ({t.cpu:.1f} CPU-s, "
              f"{t.wall:.1f} s wall), {len(clusters)} clusters")
        print(format_scores(score(corpus, clusters, decision.threshold)))
    if per_job:
        print("  datatrove per job: " + ", ".join(f"{k} {v.cpu:.1f} CPU-s / {v.wall:.1f} s wall"
                                                 for k, v in per_job.items()))
        print(f"  datatrove CPU / ours: {results['datatrove'][1].cpu / ours_t.cpu:.1f}x (one run each, not "
              f"interleaved; datatrove's includes its JSONL reads and writes, ours is in memory; its multiprocess "
              f"manager process is not counted)")
    print(dedup_differences(decision) + "\n")


# ------------------------------------------------------------------------------------------- 4. our recipe


def time_stages(stages, docs: list[Document]) -> list[dict]:
    """Each stage in this process on the previous stage's output, timed in CPU-seconds (process_time)."""
    rows = []
    for stage in stages:
        start = time.process_time()
        if all(hasattr(stage, a) for a in ("summarise", "decide", "apply")):  # a global stage (dedup)
            output = stage.apply(docs, stage.decide([stage.summarise(docs)]))
        else:
            output = stage(docs)
        stats = StageStats(stage.name)
        stats.add(output, time.process_time() - start)
        rows.append(stats.to_dict())
        docs = output.kept
    return rows


def format_stage_rows(rows: list[dict]) -> str:
    lines = [f"{'stage':<14}{'read':>8}{'kept':>8}{'CPU-s/doc':>11}{'docs/CPU-s':>12}  dropped by reason"]
    for row in rows:
        per_doc = row["seconds"] / row["read"] if row["read"] else float("nan")
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(row["dropped"].items(), key=lambda kv: -kv[1]))
        lines.append(f"{row['name']:<14}{row['read']:>8}{row['kept']:>8}{per_doc:>11.2e}"
                     f"{1 / per_doc if per_doc else float('inf'):>12,.0f}  {reasons}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--pairs", type=int, default=2_500, help="planted near-duplicate pairs (planted corpus)")
    parser.add_argument("--rounds", type=int, default=8, help="batches ours and the peers alternate over")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipe", default="full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule-docs", type=int, default=2000,
                        help="documents for the each-rule-alone table of section 1 (0: skip it)")
    parser.add_argument("--sections", default="heuristics,signatures,dedup,recipe",
                        help="comma-separated subset of: heuristics, signatures, dedup, recipe")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    unknown = sections - {"heuristics", "signatures", "dedup", "recipe"}
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)}; choose from heuristics, signatures, dedup, recipe")
    register_resolvers()
    dedup_cfg = OmegaConf.load(DEDUP_YAML)
    print(f"os.cpu_count()={os.cpu_count()}; datatrove peer: "
          f"{'installed' if datatrove_available() else 'NOT installed (pip install -r requirements-bench.txt)'}")

    start = time.perf_counter()
    module = load_near_dup_corpus()
    corpus = None
    if module is not None:
        corpus = module.generate_corpus(args.docs, args.pairs, args.seed)
        docs = list(corpus.documents)
        origin = f"planted near-duplicate corpus (benchmarks/near_dup_corpus.py, {len(corpus.pairs)} pairs)"
    else:
        docs = make_documents(args.docs, args.seed)
        origin = "embedded-text pieces (benchmarks/near_dup_corpus.py not found: no dedup-quality section)"
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    domains = Counter(d.domain for d in docs)
    print(f"{len(docs)} documents, {mb:.0f} MB (mean {1e6 * mb / len(docs):.0f} bytes), {dict(domains)}; {origin}; "
          f"built in {time.perf_counter() - start:.0f}s\n")

    if "heuristics" in sections:
        heuristic_section(docs, args.rounds, args.rule_docs)
    if "signatures" in sections:
        signature_section(docs, args.rounds, dedup_cfg)
    if "dedup" in sections and corpus is not None:
        dedup_section(corpus, module, dedup_cfg)
    if "recipe" not in sections:
        return

    classifier_cache = tempfile.TemporaryDirectory()  # recall/quality train their classifiers afresh
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("curate", overrides=[f"curation={args.recipe}", f"paths.cache_dir={classifier_cache.name}"])
    stages, spec = build_stages(cfg.curation)
    print(f"4. Our recipe '{args.recipe}', each stage in this process (recall/quality train their classifiers "
          f"here; the runner pass below reuses them):")
    print(format_stage_rows(time_stages(stages, copy_documents(docs))))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = curate(stages, spec, tmp, documents=docs, documents_fingerprint=f"bench-{args.docs}",
                        workers=args.workers, docs_per_shard=2000, progress=False)
        wall = time.perf_counter() - start
    print(f"\nwhole recipe through curate() with {args.workers} workers (read, shard, stages, write): "
          f"{len(docs) / wall:,.0f} docs/s wall; kept {result.funnel[-1]['kept']} of {len(docs)}")


if __name__ == "__main__":
    main()
