"""The synthesis pipeline end to end against a scripted teacher served over the OpenAI protocol on loopback.

The teacher (``tests/support/teacher.py``) knows each seed's answer and how many of its 4 samples it gets
right, so every stage's outcome is predicted here: which evolutions are eliminated and why, which items the
reference and majority rewards accept, their difficulty, and what selection keeps. The same run is repeated
against servers that fail or stall (the dataset must be byte-identical, the retries counted) and killed
mid-run and resumed (byte-identical again, and no request sent twice).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import REPO, run_train
from infir.hydra_support import register_resolvers
from support.openai_server import serve
from support.teacher import ScriptedTeacher, evolution_outcome, rewrite, solved

os.environ.setdefault("HF_HUB_OFFLINE", "1")
register_resolvers()

SEEDS = ["synth.seeds.sources.procedural.max_seeds=20", "synth.seeds.sources.champ.max_seeds=6",
         "synth.seeds.sources.stdlib=null"]
FAST_RETRIES = ["synth.generator.max_retries=4", "synth.generator.backoff_base_s=0.01",
                "synth.generator.backoff_max_s=0.05", "synth.generator.max_concurrency=4"]


def _overrides(base_url: str, root: Path, *extra: str) -> list[str]:
    return ["synth/generator=openai", f"synth.generator.base_url={base_url}", "synth.generator.model=teacher",
            "synth.generator.timeout_s=1.5", *FAST_RETRIES, *SEEDS, "synth.docs_per_shard=8", "synth.progress=false",
            f"paths.output_dir={root / 'out'}", f"paths.cache_dir={root / 'cache'}", *extra]


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="synthesize", overrides=overrides)


def _seeds(cfg):
    from hydra.utils import instantiate

    return list(instantiate(cfg.synth.seeds, _convert_="all").documents())


def _run(server, root: Path, *extra: str):
    from infir.synth.app import run_synth

    return run_synth(_compose(_overrides(server.base_url, root, *extra)))


@pytest.fixture(scope="module")
def teacher() -> ScriptedTeacher:
    return ScriptedTeacher(_seeds(_compose(_overrides("http://unused", Path("/nonexistent")))))


@pytest.fixture(scope="module")
def healthy(teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("healthy")
    with serve(reply_fn=teacher) as server:
        result = _run(server, root)
        bodies = [json.dumps(b, sort_keys=True) for b in server.bodies]
    return result, bodies


def _row(result, name: str) -> dict:
    return next(row for row in result.funnel if row["name"] == name)


def test_every_stage_does_what_the_teacher_scripted(teacher, healthy) -> None:
    result, _ = healthy
    seeds = list(teacher.by_instruction.values())
    outcomes = Counter(evolution_outcome(s.text) for s in seeds)
    evolve = _row(result, "evolve")
    assert evolve["read"] == len(seeds) and evolve["created"] == len(seeds)  # one op per instruction
    assert evolve["dropped"] == {k: v for k, v in {"template_leak": outcomes["leak"], "refusal": outcomes["refuse"],
                                                   "no_information_gain": outcomes["same"]}.items() if v}
    assert _row(result, "dedup")["kept"] == evolve["kept"]  # the teacher's rewrites are no near-duplicates

    # what rejection, scoring and selection must give: seeds are checked against their reference (kept when one
    # of 4 samples is right), rewrites by majority (kept when at least 2 agree); difficulty from the solve rate
    evolved = [rewrite(s.text) for s in seeds if evolution_outcome(s.text) == "rewrite"]
    expected_kept = {}
    for text in [s.text for s in seeds] + evolved:
        k = solved(text)
        is_seed = text in teacher.by_instruction
        if (is_seed and k >= 1) or (not is_seed and k >= 2):
            expected_kept[text] = "easy" if k >= 3 else "hard" if k <= 1 else "medium"
    reject = _row(result, "reject")
    assert reject["kept"] == len(expected_kept)
    assert reject["counts"]["judged_reference_answer"] == 4 * len(seeds)
    assert reject["counts"]["accepted_reference_answer"] == sum(solved(s.text) for s in seeds)
    expected_final = {text for text, level in expected_kept.items() if level in ("medium", "hard")}
    assert {d.text for d in result.samples} == expected_final
    assert _row(result, "select")["dropped"] == {"difficulty_not_selected": len(expected_kept) - len(expected_final)}
    for doc in result.samples:
        assert doc.metadata["difficulty"] == expected_kept[doc.text]


def test_the_sft_file_is_valid_training_data_and_the_report_covers_every_stage(teacher, healthy) -> None:
    from infir.data.sft import normalise_conversation

    result, _ = healthy
    records = [json.loads(line) for line in result.sft_file.read_text().splitlines()]
    assert len(records) == len(result.samples) > 0
    for record in records:
        messages = normalise_conversation(record)
        assert [m["role"] for m in messages] == ["system", "user", "assistant"]
        seed = teacher.seed_of(messages[1]["content"].split("\nThink step by step.")[0])
        assert seed.metadata["reference"]["answer"] in messages[2]["content"]  # the kept reply is a right one
        assert messages[1]["content"].endswith("Think step by step." if seed.metadata["format"] == "gsm8k"
                                               else "Put the final answer in \\boxed{}.")
    assert all(json.loads(line)["split"] == "validation" for line in result.validation_file.read_text().splitlines())
    report = result.report.read_text()
    for row in result.funnel:
        assert f"| {row['name']} | {row['read']} |" in report
    assert "reference_answer:" in report and (result.report.parent / "report_distributions.png").stat().st_size > 0


@pytest.mark.parametrize("faults, cause", [({"fail_every": 3, "fail_status": 429}, "http_429"),
                                           ({"fail_every": 4, "fail_status": 500}, "http_500"),
                                           ({"slow_every": 5, "slow_s": 3.0}, "timeout")],
                         ids=["429", "500", "slower_than_timeout"])
def test_a_flaky_server_gives_the_same_dataset_and_counts_its_retries(teacher, healthy, tmp_path, faults,
                                                                      cause) -> None:
    with serve(reply_fn=teacher, **faults) as server:
        result = _run(server, tmp_path)
        injected = server.failures_sent + server.slow_sent
    assert result.sft_file.read_bytes() == healthy[0].sft_file.read_bytes()
    counted = Counter()
    for row in result.funnel:
        counted.update(row.get("counts", {}))
    assert injected > 0 and counted[f"backend_retry_{cause}"] >= injected
    if cause != "timeout":  # on a loaded machine a healthy reply can also outlast the timeout: counted, retried
        assert counted[f"backend_retry_{cause}"] == injected
    assert counted["backend_retries"] >= injected
    assert not any("request_failed" in row["dropped"] for row in result.funnel)


def test_a_killed_run_resumes_to_the_same_dataset_without_asking_twice(teacher, healthy, tmp_path) -> None:
    """Killed half-way through a shard of the candidates stage: the resumed run re-runs that shard, but asks the
    teacher only for what it had not yet answered (the reply cache stores each reply as it arrives)."""
    def candidate_replies(server) -> list[str]:
        with server.lock:
            return [json.dumps(b, sort_keys=True) for b in server.answered if b.get("n") == 4]

    with serve(reply_fn=teacher, delay_s=0.2) as server:
        cmd = [sys.executable, "-m", "infir.synth",
               *_overrides(server.base_url, tmp_path, "synth.generator.timeout_s=60")]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        shard = "synth/curation/*/0?_*candidates*/shard_0000{}.stats.json"  # the pass that runs candidates
        start = None  # replies when the stage's first shard was done
        while start is None or len(candidate_replies(server)) < start + 5:  # 5 replies into the second shard
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the candidates stage never got into its second shard"
            if start is None and list((tmp_path / "cache").glob(shard.format(0))):
                start = len(candidate_replies(server))
            time.sleep(0.01)
        assert not list((tmp_path / "cache").glob(shard.format(1)))  # killed inside the second shard
        received = set(candidate_replies(server))
        time.sleep(0.1)  # the client stores a reply as it arrives; give the last ones time to land
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        asked_before = len(server.bodies)
        assert not list((tmp_path / "cache").glob("synth/curation/*/manifest.json"))  # killed mid-run
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, timeout=300)
        asked_again = [json.dumps(b, sort_keys=True) for b in server.bodies[asked_before:]]
        bodies = {json.dumps(b, sort_keys=True) for b in server.bodies}
    sft_file = tmp_path / "out" / "synth" / "embedded" / "medium_hard" / "sft.jsonl"
    assert sft_file.read_bytes() == healthy[0].sft_file.read_bytes()
    assert not received & set(asked_again)  # no answered request was sent again
    assert bodies == set(healthy[1])  # and nothing else was asked


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    from support.tiny_lm import save_tiny_lm

    return save_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))


def test_phase_sft_trains_on_the_synthesised_file_as_written(healthy, tiny_lm, tmp_path, shared_cache) -> None:
    result, _ = healthy
    run_train(["phase=sft", "data_mix=synth_sft", f"data_mix.synth_dir={result.sft_file.parent}",
               f"phase.init_from=hf:{tiny_lm}", "debug=smoke", "logger=csv"], tmp_path, shared_cache, fork=True)
    (plan,) = tmp_path.glob("*/runs/*/run_plan.json")
    stats = json.loads(plan.read_text())["domains"]
    assert stats["conversations"] + sum(stats["skipped"].values()) == len(result.samples)  # none lost in reading
    assert stats["conversations"] > 0 and list(stats["validation"]) == ["embedded_validation"]


def test_a_synthetic_anneal_mix_trains_and_pretraining_refuses_it(healthy, tiny_lm, tmp_path, shared_cache) -> None:
    result, _ = healthy
    from infir.data.sources.champ import ChampSource

    mix = ["data_mix=synth_anneal", f"data_mix.synth_dir={result.sft_file.parent}", "data_mix.sources.procedural=null",
           f"phase.init_from=hf:{tiny_lm}", "phase.optimizer.lr=1e-3",
           "debug=smoke", "logger=csv"]
    run_train(["phase=anneal", *mix], tmp_path / "anneal", shared_cache, fork=True)
    (plan,) = (tmp_path / "anneal").glob("*/runs/*/run_plan.json")
    documents = json.loads(plan.read_text())["documents"]
    champ_train = sum(d.split == "train" for d in ChampSource().documents())
    smoke_cap = 100  # debug=smoke: data_mix.max_documents_per_split
    assert documents["math/train"] == min(champ_train, smoke_cap) + sum(d.domain == "math" for d in result.samples)
    refused = run_train(["phase=pretrain", *mix, "data_mix.allow_synthetic=false"], tmp_path / "pretrain",
                        shared_cache, check=False, fork=True)
    assert refused.returncode != 0 and "synthetic sources ['synth']" in refused.stderr


@pytest.mark.parametrize("override, expected", [
    ("+synth.bogus=1", "unknown key(s) ['synth.bogus']"),
    ("synth.generator.model=/nonexistent/model", "model=/nonexistent/model: does not exist"),
    ("synth.stages.select.difficulties.math=[easy,extreme]", "unknown level(s) ['extreme']"),
    ("+synth.stages.candidates.temprature=0.5", "synth.stages.candidates:"),
], ids=["unknown_key", "missing_generator", "bad_level", "misspelt_stage_key"])
def test_set_up_errors_are_one_line_before_any_work(override, expected, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "infir.synth", override, f"paths.output_dir={tmp_path}",
                           f"paths.cache_dir={tmp_path / 'cache'}"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("[infir] synth: ") and expected in line
    assert not (tmp_path / "cache" / "synth" / "curation").exists()  # nothing ran


@pytest.mark.parametrize("recipe", sorted(p.stem for p in (REPO / "conf" / "synth").glob("*.yaml")))
def test_every_committed_recipe_composes_with_known_keys_and_importable_stages(recipe) -> None:
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from infir.synth.app import check_synth_keys

    cfg = _compose([f"synth={recipe}", "synth.reward_model.path=/models/rm"] if recipe == "teacher"
                   else [f"synth={recipe}"])
    spec = OmegaConf.to_container(cfg.synth, resolve=True)
    check_synth_keys(spec)
    for node in spec["stages"].values():
        assert get_class(node["_target_"])
    assert cfg.synth.variant in {p.stem for p in (REPO / "conf" / "synth" / "selection").glob("*.yaml")}
