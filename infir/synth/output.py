"""The run's products: the SFT file (``messages`` records ``phase=sft`` reads as is) and the report.

The report (``report.md`` + PNG histograms) shows every stage's counts: read, created, kept, dropped by
reason, the acceptance rate (kept / (read + created)) and the events inside the stage (candidate replies,
per-reward acceptance), then the final difficulty x domain table and the quality and pass-rate distributions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from infir.atomic_files import atomic_write_text
from infir.data.documents import Document
from infir.synth.items import DIFFICULTIES, DIFFICULTY, ORIGIN, PASS_RATE, PROMPT, QUALITY, RESPONSE, REWARD

SFT_FILE, VALIDATION_FILE, REPORT_FILE, FUNNEL_FILE = "sft.jsonl", "validation.jsonl", "report.md", "funnel.json"


def sft_record(doc: Document) -> dict[str, Any]:
    """One training conversation, with the provenance and scores a researcher filters or groups by."""
    prompt = doc.metadata[PROMPT]
    return {"messages": [{"role": "system", "content": prompt["system"]}, {"role": "user", "content": prompt["user"]},
                         {"role": "assistant", "content": doc.metadata[RESPONSE]}],
            "id": doc.id, "split": "train", "seed_source": doc.source, "domain": doc.domain,
            "difficulty": doc.metadata[DIFFICULTY], "quality": doc.metadata[QUALITY],
            "origin": doc.metadata[ORIGIN], "reward": doc.metadata[REWARD], "synthetic": True}


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> int:
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def _rate(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.1%}" if denominator else "-"


def funnel_table(funnel: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| stage | read | created | kept | acceptance | dropped by reason | events |",
             "|---|---|---|---|---|---|---|"]
    for row in funnel:
        created = row.get("created", 0)
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["dropped"].items(), key=lambda kv: -kv[1])) or "-"
        events = ", ".join(f"{k} {v}" for k, v in row.get("counts", {}).items()) or "-"
        lines.append(f"| {row['name']} | {row['read']} | {created} | {row['kept']} | "
                     f"{_rate(row['kept'], row['read'] + created)} | {reasons} | {events} |")
    return lines


def reward_rates(funnel: Sequence[dict[str, Any]]) -> list[str]:
    """Candidate-level acceptance per reward, from the rejection stage's counts."""
    lines = []
    for row in funnel:
        counts = row.get("counts", {})
        for key, judged in counts.items():
            if key.startswith("judged_"):
                reward = key.removeprefix("judged_")
                accepted = counts.get(f"accepted_{reward}", 0)
                lines.append(f"- `{row['name']}` / {reward}: {accepted} of {judged} candidates accepted "
                             f"({_rate(accepted, judged)})")
    return lines


def _histograms(docs: Sequence[Document], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    domains = sorted({d.domain for d in docs})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for domain in domains:
        cells = Counter(d.metadata[DIFFICULTY] for d in docs if d.domain == domain)
        axes[0].bar([f"{level}\n{domain}" for level in DIFFICULTIES], [cells[level] for level in DIFFICULTIES])
    axes[0].set_title("difficulty x domain")
    axes[1].hist([[d.metadata[QUALITY] for d in docs if d.domain == dom] for dom in domains] or [[]], bins=10,
                 range=(0, 1), label=domains, stacked=True)
    axes[1].set_title("quality")
    axes[2].hist([[d.metadata[PASS_RATE] for d in docs if d.domain == dom] for dom in domains] or [[]], bins=10,
                 range=(0, 1), label=domains, stacked=True)
    axes[2].set_title("pass rate (accepted / candidates)")
    if domains:
        axes[1].legend()
    fig.tight_layout()
    path = out_dir / "report_distributions.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    names.append(path.name)
    return names


def write_report(out_dir: Path, recipe: str, funnel: Sequence[dict[str, Any]], docs: Sequence[Document],
                 work_dir: Path, backend: dict[str, Any], seconds: float | None = None) -> Path:
    """report.md + PNG + funnel.json in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = _histograms(docs, out_dir)
    cells = Counter((d.domain, d.metadata[DIFFICULTY]) for d in docs)
    domains = sorted({d.domain for d in docs})
    origins = Counter(d.metadata[ORIGIN] for d in docs)
    lines = [f"# SFT synthesis report: `{recipe}`", "",
             f"- samples written: **{len(docs)}** ({', '.join(f'{k} {v}' for k, v in sorted(origins.items()))})",
             f"- generator: `{backend['fingerprint']}` ({backend['backend']})",
             f"- stage outputs and statistics: `{work_dir}`"]
    if seconds is not None:
        lines.append(f"- wall time of this invocation: {seconds:.0f} s")
    lines += ["", "## Stages", "", *funnel_table(funnel), "", "## Candidate acceptance per reward", "",
              *(reward_rates(funnel) or ["- (no rejection stage)"]), "", "## Final samples by domain and difficulty",
              "", "| domain | " + " | ".join(DIFFICULTIES) + " | total |", "|---|" + "---|" * (len(DIFFICULTIES) + 1)]
    for domain in domains:
        row = [cells[(domain, level)] for level in DIFFICULTIES]
        lines.append(f"| {domain} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    lines += ["", *(f"![{name}]({name})" for name in images), ""]
    atomic_write_text(out_dir / FUNNEL_FILE, json.dumps(list(funnel), indent=2))
    path = out_dir / REPORT_FILE
    atomic_write_text(path, "\n".join(lines))
    return path
