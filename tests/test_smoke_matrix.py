"""`debug=smoke` ("every code path in seconds") composes and runs with every experiment and trainer the
README lists (before: data_quality failed on a missing key, the chain's SFT phase dropped every
conversation at smoke's sequence length, trainer=ddp hit a batch-size divisibility error)."""

from __future__ import annotations

import re

import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import REPO, read_metrics, run_train
from infir.config import validate_config
from infir.hydra_support import register_resolvers

register_resolvers()

CONVERSATIONS = [
    {"messages": [{"role": "user", "content": f"What is {a} + {b}?"},
                  {"role": "assistant", "content": f"{a} + {b} = {a + b}.\n#### {a + b}"}]}
    for a, b in [(2, 3), (7, 4), (10, 11), (21, 21), (5, 8), (9, 9)]
]


def _readme_options(group: str) -> list[str]:
    """The options the README's config-group table lists for ``group``."""
    row = re.search(rf"^\| `{group}` \| (.*?) \|", (REPO / "README.md").read_text(), re.MULTILINE)
    assert row, f"README lists no {group} options"
    return re.findall(r"`([a-z0-9_]+)`", row.group(1))


EXPERIMENTS = _readme_options("experiment")
TRAINERS = _readme_options("trainer")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, shared_cache):
    """A smoke pre-training export: the tokenizer and init_from the continued/1B experiments need."""
    out = tmp_path_factory.mktemp("smoke_base")
    run_train(["debug=smoke", "data_mix.token_budget=2560"], out, shared_cache, fork=True)
    return next((out / "embedded_pretrain" / "runs").iterdir()) / "hf_export"


def _inputs(experiment: str, model_dir, tmp_path) -> list[str]:
    """What each experiment needs from the user anyway (its README command gives them)."""
    if experiment == "llama3_2_1b_pretrain":  # real pre-training keeps synthetic text out (PAPER.md §2): so must
        return [f"tokenizer.path={model_dir}", "data_mix.sources.procedural=null"]  # the embedded stand-in mix
    if experiment == "llama3_2_1b_anneal" or experiment.startswith("infir_vl_1_6b_") or experiment == "sft_difficulty":
        return [f"phase.init_from=hf:{model_dir}"]
    if experiment == "llama3_2_1b_sft":
        path = tmp_path / "sft.jsonl"
        path.write_text("".join(__import__("json").dumps(c) + "\n" for c in CONVERSATIONS))
        return [f"phase.init_from=hf:{model_dir}",
                f"data_mix.files=[{{path: {path}, split: train}}, {{path: {path}, split: validation}}]"]
    return []


def test_the_matrix_covers_what_the_readme_lists():
    assert set(EXPERIMENTS) == {p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")}
    assert set(TRAINERS) == {p.stem for p in (REPO / "conf" / "trainer").glob("*.yaml")}
    # experiment=embedded_chain debug=smoke runs in tests/test_sft_phase.py (its chain fixture), with smoke's
    # own SFT sequence length (before: every conversation was dropped as too long)
    from test_sft_phase import CHAIN
    assert "experiment=embedded_chain" in CHAIN and "debug=smoke" in CHAIN and "seq_len" not in " ".join(CHAIN)
    from test_vl_chain import CHAIN as VL_CHAIN
    assert "experiment=embedded_vl_chain" in VL_CHAIN and "debug=smoke" in VL_CHAIN


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_smoke_composes_and_validates_with_every_experiment_and_trainer(experiment, trainer, tmp_path):
    fake_model = tmp_path / "model"
    fake_model.mkdir()
    (fake_model / "config.json").write_text("{}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", f"trainer={trainer}", "debug=smoke",
                                                      *_inputs(experiment, fake_model, tmp_path)])
    validate_config(cfg)
    assert cfg.model.name == "nano" and cfg.data_mix.max_documents_per_split == 100
    assert cfg.phase.seq_len == cfg.phase.smoke_seq_len < 1024
    devices = cfg.trainer.devices if isinstance(cfg.trainer.devices, int) else 1
    assert cfg.phase.global_batch_size % (cfg.phase.micro_batch_size * devices) == 0


# The chains run in their own tests (test_sft_phase.py, test_vl_chain.py). The InfiR-VL-1.6B stages are composed
# and validated above: their SigLIP-So400m tower (428 M parameters, 5 tiles of 384 px per image) is a GPU job.
# sft_difficulty is phase=sft on data_mix=synth_sft, which tests/test_synth_pipeline.py trains on a synthesised file.
# data_quality_llama3_2_1b reads the paper's data (data_mix=paper): tests/test_paper_mix.py reads every source's
# stand-in through its configured reader.
RUN_ELSEWHERE = {"embedded_chain", "embedded_vl_chain", "infir_vl_1_6b_align", "infir_vl_1_6b_render",
                 "infir_vl_1_6b_sft", "sft_difficulty", "data_quality_llama3_2_1b"}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e not in RUN_ELSEWHERE])
def test_smoke_runs_every_readme_experiment(experiment, model_dir, tmp_path, shared_cache):
    # the 1B experiments select trainer=gpu; a CPU machine runs their smoke on trainer=cpu
    trainer = [] if experiment == "data_quality" or torch.cuda.is_available() else ["trainer=cpu"]
    proc = run_train([f"experiment={experiment}", "debug=smoke", "data_mix.token_budget=2560", *trainer,
                      *_inputs(experiment, model_dir, tmp_path)], tmp_path, shared_cache, fork=True)
    finished = re.findall(r"\[infir\] finished (\d+) steps; (\S+) = ([\d.]+)", proc.stdout)
    assert finished, proc.stdout[-3000:]
    assert len(finished) == 1 and int(finished[0][0]) >= 1
    (metrics,) = tmp_path.rglob("csv/metrics.csv")
    assert any(r.get("val/loss") for r in read_metrics(metrics))


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["gpu", "fsdp2"])
def test_smoke_runs_with_the_gpu_trainers(trainer, tmp_path, shared_cache):
    """trainer=cpu is every other smoke test's; trainer=ddp trainer.devices=2 with smoke's own batch sizes is
    tests/test_train_e2e.py::test_ddp_two_cpu_processes_match_single_process_with_one_set_of_outputs."""
    if not torch.cuda.is_available():
        pytest.skip(f"trainer={trainer} needs a CUDA device (composition is checked above)")
    proc = run_train(["debug=smoke", f"trainer={trainer}", "data_mix.token_budget=2560"], tmp_path, shared_cache)
    assert "[infir] finished 5 steps" in proc.stdout, proc.stdout[-3000:]
