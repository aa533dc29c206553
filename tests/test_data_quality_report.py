"""The data-quality comparison script and notebook work on a multirun folder's layout."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "experiments" / "data_quality"))
import compare  # noqa: E402

from infir.compare import load_jobs  # noqa: E402


def _fake_multirun(root, results: dict[str, list[float]], seeds=(1234,), model: str | None = None):
    """Job folders as Hydra and train.py write them: overrides, config, metrics CSV, curation funnel.

    ``results`` maps a recipe to its val/bpb curve; seed s adds 0.01·(index of s) to the final value.
    """
    for i, (recipe, curve) in enumerate(results.items()):
        for k, seed in enumerate(seeds):
            overrides = [f"curation={recipe}", "experiment=data_quality", f"seed={seed}"]
            if model:
                overrides.append(f"model={model}")
            job = root / "sweep" / "+".join(item.replace("=", "-") for item in overrides)
            (job / ".hydra").mkdir(parents=True)
            (job / "csv").mkdir()
            (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
                {"name": "data_quality", "curation": {"name": recipe}, "seed": seed, "optimized_metric": "val/bpb",
                 "model": {"name": model or "tiny"}}))
            final = [*curve[:-1], curve[-1] + 0.01 * k]
            with (job / "csv" / "metrics.csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=["step", "train/loss", "val/bpb", "val/bpb/code",
                                                       "val/bpb/prose"])
                writer.writeheader()
                for step, value in zip((0, 49, 99), final):
                    writer.writerow({"step": step, "train/loss": 1.0})
                    writer.writerow({"step": step, "val/bpb": value, "val/bpb/code": value - 0.1,
                                     "val/bpb/prose": value + 0.1})
            (job / "curation_funnel.json").write_text(json.dumps(
                {"recipe": recipe, "funnels": {"raw_crawl": [{"read": 100, "kept": 100},
                                                             {"read": 100, "kept": 100 - 10 * i}]}}))


def _row(markdown: str, recipe: str) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {recipe} |")]
    assert len(rows) == 1, rows
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def test_one_row_per_recipe_in_paper_order_with_seed_aggregates_and_docs_kept(tmp_path):
    _fake_multirun(tmp_path / "multirun", {"heuristic_dedup": [8.0, 3.0, 2.5], "raw": [8.0, 3.2, 2.75]},
                   seeds=(7, 42, 1234))
    comparison = compare.compare_recipes(load_jobs([tmp_path / "multirun"]))
    assert [g.label for g in comparison.groups] == ["curation=raw", "curation=heuristic_dedup"]  # paper order
    assert comparison.metrics == ["val/bpb", "val/bpb/code", "val/bpb/prose"]
    text = comparison.markdown()
    # recipe | docs kept / in | n | val/bpb mean | min – max | vs curation=raw | per seed | ...
    assert _row(text, "heuristic_dedup")[:7] == ["heuristic_dedup", "100 / 100", "3", "2.5100", "2.5000 – 2.5200",
                                                  "-9.1 %", "7: 2.5000, 42: 2.5100, 1234: 2.5200"]
    assert _row(text, "raw")[1:6] == ["90 / 100", "3", "2.7600", "2.7500 – 2.7700", "+0.0 %"]
    assert _row(text, "raw")[7] == "2.6600"  # val/bpb/code mean
    assert comparison.headline() == "best: curation=heuristic_dedup at 2.5100 val/bpb; baseline curation=raw " \
                                    "2.7600 (-9.1 %)"


def test_script_writes_beside_the_runs_by_default_and_never_into_experiments(tmp_path):
    _fake_multirun(tmp_path / "multirun", {"raw": [8.0, 3.2, 2.75], "full": [8.0, 3.0, 2.5]}, model="nano")
    committed = {p: p.read_bytes() for p in (REPO / "experiments" / "data_quality").glob("results.*")}
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "data_quality" / "compare.py"),
                           str(tmp_path / "multirun")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "multirun" / "comparison"
    assert (out / "results.md").read_text() == proc.stdout
    assert "fixed: experiment=data_quality, seed=1234, model=nano" in proc.stdout
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "results.json").read_text())["groups"][1]["extra"] == {"docs kept / in": "90 / 100"}
    assert {p: p.read_bytes() for p in (REPO / "experiments" / "data_quality").glob("results.*")} == committed
    proc = subprocess.run([sys.executable, str(REPO / "experiments" / "data_quality" / "compare.py"),
                           str(tmp_path / "nothing_here")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("[infir] compare: not a directory:")


def test_notebook_executes_on_a_multirun_folder(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    _fake_multirun(tmp_path / "multirun", {"raw": [8.0, 3.2, 2.75], "heuristic": [8.0, 3.1, 2.6]})
    nb = nbformat.read(REPO / "notebooks" / "data_quality.ipynb", as_version=4)
    os.environ["INFIR_MULTIRUN"] = str(tmp_path / "multirun")
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        del os.environ["INFIR_MULTIRUN"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
                   for cell in nb.cells for o in cell.get("outputs", []))
    assert "best: curation=heuristic at 2.6000 val/bpb; baseline curation=raw 2.7500 (-5.5 %)" in text
    assert "| heuristic | 90 / 100 | 1 | 2.6000 |" in text
    assert sum("image/png" in o.get("data", {}) for cell in nb.cells for o in cell.get("outputs", [])) == 2
