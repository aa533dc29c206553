"""Curation throughput per stage and per core on >= 50k documents of 1-4 KB.

    python benchmarks/curation.py [--docs 50000] [--workers 2] [--recipe full]

Documents are assembled from real embedded text (Python docs prose, stdlib code,
CHAMP math) cut into 1-4 KB pieces, with 5 % exact and 5 % near duplicates and 30 %
general-web pages (the raw crawl's generator). Recall and quality train their
classifiers in the per-stage pass (timed with the stage); the runner pass reuses them. Each
stage runs once in this process (docs/s per core) and the whole recipe runs once
through the process-pool runner (wall docs/s with ``--workers``). MinHash
signatures are also timed against datasketch's own ``MinHash.bulk`` on the same
documents (the peer they stand in for), in the same run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import infir  # noqa: E402,F401
from hydra import compose, initialize_config_dir  # noqa: E402

from infir.data.curation.app import build_stages  # noqa: E402
from infir.data.curation.base import StageStats  # noqa: E402
from infir.data.curation.dedup import shingles  # noqa: E402
from infir.data.curation.pipeline import curate  # noqa: E402
from infir.data.curation.runner import GlobalStage, format_funnel  # noqa: E402
from infir.data.documents import Document  # noqa: E402
from infir.data.sources.champ import ChampSource  # noqa: E402
from infir.data.sources.python_docs import PythonDocsSource  # noqa: E402
from infir.data.sources.raw_crawl import general_web_page  # noqa: E402
from infir.data.sources.stdlib_code import StdlibCodeSource  # noqa: E402
from infir.hydra_support import register_resolvers  # noqa: E402


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


def time_stages(stages, docs: list[Document]) -> list[dict]:
    """Each stage in this process on the previous stage's output: docs/s per core."""
    rows = []
    for stage in stages:
        start = time.perf_counter()
        if isinstance(stage, GlobalStage):
            output = stage.apply(docs, stage.decide([stage.summarise(docs)]))
        else:
            output = stage(docs)
        stats = StageStats(stage.name)
        stats.add(output, time.perf_counter() - start)
        rows.append(stats.to_dict())
        docs = output.kept
    return rows


def minhash_vs_datasketch(docs: list[Document], n: int) -> tuple[float, float]:
    from datasketch import MinHash

    from infir.data.curation.dedup import minhash_signatures

    texts = [d.text for d in docs[:n]]
    start = time.perf_counter()
    minhash_signatures(texts, 112, 5, 1)
    ours = n / (time.perf_counter() - start)
    start = time.perf_counter()
    MinHash.bulk([[s.encode() for s in shingles(t)] for t in texts], num_perm=112, seed=1)
    peer = n / (time.perf_counter() - start)
    return ours, peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipe", default="full")
    args = parser.parse_args()
    register_resolvers()
    classifier_cache = tempfile.TemporaryDirectory()  # recall/quality train their classifiers afresh
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("curate", overrides=[f"curation={args.recipe}", f"paths.cache_dir={classifier_cache.name}"])
    stages, spec = build_stages(cfg.curation)

    start = time.perf_counter()
    docs = make_documents(args.docs)
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"{len(docs)} documents, {mb:.0f} MB (mean {1e6 * mb / len(docs):.0f} bytes), built in "
          f"{time.perf_counter() - start:.0f}s\n")

    print("per stage, one process (docs/s per core):")
    print(format_funnel(time_stages(stages, docs)))

    ours, peer = minhash_vs_datasketch(docs, min(10_000, len(docs)))
    print(f"\nMinHash signatures (112 perms, word 5-grams): infir {ours:,.0f} docs/s/core, "
          f"datasketch MinHash.bulk {peer:,.0f} docs/s/core, ratio {ours / peer:.1f}x (target >= 10k docs/s/core)")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = curate(stages, spec, tmp, documents=docs, documents_fingerprint=f"bench-{args.docs}",
                        workers=args.workers, docs_per_shard=2000, progress=False)
        wall = time.perf_counter() - start
    print(f"\nwhole recipe through the runner with {args.workers} workers (read, shard, stages, write): "
          f"{len(docs) / wall:,.0f} docs/s wall, {len(docs) / wall / args.workers:,.0f} docs/s per core; "
          f"kept {result.funnel[-1]['kept']} of {len(docs)}")


if __name__ == "__main__":
    main()
