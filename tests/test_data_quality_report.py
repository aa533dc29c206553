"""The data-quality comparison script and notebook work on a multirun folder's layout."""

from __future__ import annotations

import csv
import os
import sys

import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "experiments" / "data_quality"))
import compare  # noqa: E402


def _fake_multirun(root, results: dict[str, list[float]]):
    """Job folders as Hydra and train.py write them: config, metrics CSV, curation funnel."""
    for i, (recipe, curve) in enumerate(results.items()):
        job = root / f"curation={recipe},experiment=data_quality"
        (job / ".hydra").mkdir(parents=True)
        (job / "csv").mkdir()
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"curation": {"name": recipe}, "seed": 1234}))
        with (job / "csv" / "metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", "train/loss", "val/bpb", "val/bpb/code", "val/bpb/prose"])
            writer.writeheader()
            for step, value in zip((0, 49, 99), curve):
                writer.writerow({"step": step, "train/loss": 1.0})
                writer.writerow({"step": step, "val/bpb": value, "val/bpb/code": value - 0.1,
                                 "val/bpb/prose": value + 0.1})
        (job / "curation_funnel.json").write_text(
            '{"recipe": "%s", "funnels": {"raw_crawl": [{"read": 100, "kept": 100}, {"read": 100, "kept": %d}]}}'
            % (recipe, 100 - 10 * i))


def test_compare_writes_table_and_plot_in_recipe_order(tmp_path):
    _fake_multirun(tmp_path / "multirun", {"heuristic_dedup": [8.0, 3.0, 2.5], "raw": [8.0, 3.2, 2.75]})
    records = compare.load_results(tmp_path / "multirun")
    assert [r["recipe"] for r in records] == ["raw", "heuristic_dedup"]  # paper order, not folder order
    assert records[1]["val/bpb"] == 2.5 and records[1]["docs_kept"] == 100
    table = compare.markdown_table(records)
    assert "| heuristic_dedup | 1234 | 100 / 100 | 2.5000 | -9.1 % | 2.4000 | 2.6000 |" in table
    compare.plot(records, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    assert "best recipe: heuristic at 2.6000 bpb; raw: 2.7500 bpb (-5.5 %)" in text
    assert any("image/png" in o.get("data", {}) for cell in nb.cells for o in cell.get("outputs", []))
