"""A scaling model on paper: hours to curate 1 TB / 10 TB of raw text on N nodes, from measured rates.

    python benchmarks/scaling_model.py --manifest <cache>/curation/<key>/manifest.json [--cores-per-node 64]
        [--decide-seconds-per-doc 1.8e-5] [--fs-gbps 5] [--driver-memory-gb 512]

Reads a finished run's funnel (per stage: documents read and CPU-seconds, so documents per CPU-second, and each
stage's keep fraction) and the run's shard and summary sizes, then models a run over ``--tb`` terabytes of raw
text of the same make-up: every map stage and every summarise/apply scales with cores (N x cores-per-node tasks);
each global stage's decide runs once on the driver (``--decide-seconds-per-doc`` for the decides that grow with
the corpus, ``--decide-stages``: measured 0.9 CPU-s for 50k documents of MinHash LSH) and must hold its summaries in the driver's memory; every pass reads and writes
its shards over the shared filesystem (``--fs-gbps`` aggregate). It prints the hours per (size, nodes) and the
term that dominates, and where scaling stops: where the serial decide or the filesystem takes over, or where
the decision no longer fits in memory. A model, not a measurement: the rates are one machine's, and real crawls
keep far fewer documents after the heuristic stage than the benchmark corpus does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def measured(manifest: Path) -> dict:
    record = json.loads(manifest.read_text())
    run_dir = manifest.parent
    funnel = record["funnel"]
    raw_bytes = sum(p.stat().st_size for p in (run_dir / "00_read").glob("shard_*"))
    shard_bytes = sum(p.stat().st_size for p in run_dir.glob("[0-9][0-9]_*/shard_*") if ".summary." not in p.name
                      and not p.name.endswith(".stats.json"))
    summary_bytes = {}
    for p in run_dir.glob("[0-9][0-9]_*/*.summary.pkl"):
        stage = p.name.split(".")[1]
        summary_bytes[stage] = summary_bytes.get(stage, 0) + p.stat().st_size
    docs = funnel[0]["read"]
    return {"docs": docs, "raw_bytes_per_doc": raw_bytes / docs, "shard_bytes_per_doc": shard_bytes / docs,
            "summary_bytes_per_doc": {s: b / docs for s, b in summary_bytes.items()},
            "stages": [{"name": r["name"], "share": r["read"] / docs,
                        "cpu_s_per_doc": r["seconds"] / max(r["read"], 1)} for r in funnel[1:]]}


def model(m: dict, text_bytes: float, nodes: int, cores: int, decide_s: float, fs_gbps: float,
          text_bytes_per_doc: float, decide_stages: list[str]) -> dict:
    docs = text_bytes / text_bytes_per_doc
    cpu = sum(s["share"] * s["cpu_s_per_doc"] for s in m["stages"]) * docs
    parallel_h = cpu / (nodes * cores) / 3600
    global_stages = list(m["summary_bytes_per_doc"])
    # decides that grow with the corpus (dedup's LSH over every signature); recall's and quality's train on a
    # bounded sample (max_examples_per_label), a constant
    decide_h = sum(s["share"] for s in m["stages"] if s["name"] in decide_stages) * docs * decide_s / 3600
    io_bytes = 2 * m["shard_bytes_per_doc"] * docs * (len(global_stages) + 1) + m["raw_bytes_per_doc"] * docs
    io_h = io_bytes / (fs_gbps * 1e9) / 3600
    memory_gb = max((b * docs / 1e9 for g, b in m["summary_bytes_per_doc"].items() if g in decide_stages),
                    default=0.0)
    total = parallel_h + decide_h + io_h
    parts = {"CPU (parallel)": parallel_h, "decide (serial)": decide_h, "filesystem": io_h}
    return {"docs": docs, "hours": total, "dominant": max(parts, key=parts.get), "decide_memory_gb": memory_gb,
            **parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--tb", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--cores-per-node", type=int, default=64)
    parser.add_argument("--decide-seconds-per-doc", type=float, default=1.8e-5)
    parser.add_argument("--fs-gbps", type=float, default=5.0, help="shared filesystem aggregate GB/s")
    parser.add_argument("--driver-memory-gb", type=float, default=512.0)
    parser.add_argument("--text-bytes-per-doc", type=float, default=2300.0, help="UTF-8 text per raw document")
    parser.add_argument("--decide-stages", nargs="+", default=["dedup"], help="global stages whose decide grows "
                        "with the corpus")
    args = parser.parse_args()
    m = measured(args.manifest)
    print("measured on", m["docs"], "documents:", ", ".join(
        f"{s['name']} {1 / s['cpu_s_per_doc']:.0f} docs/CPU-s on {s['share']:.0%}" for s in m["stages"]
        if s["cpu_s_per_doc"] > 0), f"; summaries {m['summary_bytes_per_doc']} bytes/doc")
    print(f"\n| raw text | nodes × {args.cores_per_node} cores | hours | CPU | decide | filesystem | dominant "
          "| decision memory |")
    print("|---|---|---|---|---|---|---|---|")
    for tb in args.tb:
        for n in args.nodes:
            r = model(m, tb * 1e12, n, args.cores_per_node, args.decide_seconds_per_doc, args.fs_gbps,
                      args.text_bytes_per_doc, args.decide_stages)
            fits = "" if r["decide_memory_gb"] <= args.driver_memory_gb else " (does not fit)"
            print(f"| {tb:g} TB ({r['docs'] / 1e6:.0f}M docs) | {n} | {r['hours']:.1f} | {r['CPU (parallel)']:.1f} | "
                  f"{r['decide (serial)']:.2f} | {r['filesystem']:.2f} | {r['dominant']} | "
                  f"{r['decide_memory_gb']:.0f} GB{fits} |")


if __name__ == "__main__":
    main()
