"""Unknown keys in any config group fail before any work, naming the key, where it was set and the closest
known key (issue: ``hidden_sise: 320`` in a new conf/model/wide.yaml trained the plain tiny model)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from conftest import REPO
from infir.config import ConfigError, validate_config, validate_targets
from infir.config.targets import heavy_import, is_light
from infir.hydra_support import register_resolvers

register_resolvers()


@pytest.fixture()
def conf(tmp_path: Path) -> Path:
    """A private copy of conf/ that a test may add option files to."""
    return Path(shutil.copytree(REPO / "conf", tmp_path / "conf"))


@pytest.fixture()
def hf_dir(tmp_path: Path) -> Path:
    """Enough of an HF export for the config checks (phase.init_from=hf:<dir>)."""
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    return tmp_path / "hf"


@contextmanager
def _composed(conf_dir: Path, overrides: list[str], as_hydra_job: bool = False) -> Iterator[DictConfig]:
    """The train config composed from ``conf_dir``; ``as_hydra_job``: with its Hydra node set as a running
    job's (command line, choices), as ``python train.py`` sees it."""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=as_hydra_job)
        if as_hydra_job:
            HydraConfig.instance().set_config(cfg)
        try:
            yield cfg
        finally:
            HydraConfig.instance().cfg = None


def _both(cfg: DictConfig) -> None:
    validate_config(cfg)
    validate_targets(cfg)


@dataclass(frozen=True)
class Case:
    """A group's typo: ``bad`` (an option file with an unknown key) and ``good`` (the same, right), selected by
    ``select``; ``plus`` adds the same unknown ``key`` on the command line (on top of ``base``). ``check``:
    the check that sees it (Lightning targets are read by validate_targets only)."""

    label: str
    file: str
    bad: str
    good: str
    select: tuple[str, ...]
    key: str
    plus: str
    base: tuple[str, ...] = ()
    check: Callable[[DictConfig], None] = validate_config
    closest: str | None = None  # the known key the message suggests


_SINGLE = "lightning.pytorch.strategies.SingleDeviceStrategy"  # takes no **kwargs, unlike DDP/FSDP strategies
CASES = [
    Case("model", "model/wide.yaml", "defaults: [tiny, _self_]\nname: wide\nhidden_sise: 320\n",
         "defaults: [tiny, _self_]\nname: wide\nhidden_size: 320\n", ("model=wide",), "model.hidden_sise",
         "+model.hidden_sise=320", closest="model.hidden_size"),
    Case("phase", "phase/long.yaml", "defaults: [pretrain, _self_]\nname: long\nschedule: {warmup_stepz: 10}\n",
         "defaults: [pretrain, _self_]\nname: long\nschedule: {warmup_steps: 10}\n", ("phase=long",),
         "phase.schedule.warmup_stepz", "+phase.schedule.warmup_stepz=10", closest="phase.schedule.warmup_steps"),
    Case("data_mix source", "data_mix/small.yaml",
         "defaults: [embedded, _self_]\nsources: {champ: {heldout_fraktion: 0.2}}\n",
         "defaults: [embedded, _self_]\nsources: {champ: {heldout_fraction: 0.2}}\n", ("data_mix=small",),
         "data_mix.sources.champ.heldout_fraktion", "+data_mix.sources.champ.heldout_fraktion=0.2",
         closest="data_mix.sources.champ.heldout_fraction"),
    Case("data_mix", "data_mix/budget.yaml", "defaults: [embedded, _self_]\ntoken_budgett: 409600\n",
         "defaults: [embedded, _self_]\ntoken_budget: 409600\n", ("data_mix=budget",), "data_mix.token_budgett",
         "+data_mix.token_budgett=409600", closest="data_mix.token_budget"),
    Case("data_mix SFT source", "data_mix/sft_small.yaml",
         "defaults: [embedded_sft, _self_]\nsources: {stdlib: {max_item: 10}}\n",
         "defaults: [embedded_sft, _self_]\nsources: {stdlib: {max_items: 10}}\n", ("phase=sft", "data_mix=sft_small"),
         "data_mix.sources.stdlib.max_item", "+data_mix.sources.stdlib.max_item=10", base=("phase=sft",),
         closest="data_mix.sources.stdlib.max_items"),
    Case("trainer", "trainer/one.yaml", "defaults: [cpu, _self_]\ndevicez: 1\n",
         "defaults: [cpu, _self_]\ndevices: 1\n", ("trainer=one",), "trainer.devicez", "+trainer.devicez=1",
         check=validate_targets, closest="trainer.devices"),
    Case("trainer strategy", "trainer/single.yaml",
         f"defaults: [cpu, _self_]\nstrategy: {{_target_: {_SINGLE}, devize: cpu}}\n",
         f"defaults: [cpu, _self_]\nstrategy: {{_target_: {_SINGLE}, device: cpu}}\n",
         ("trainer=single",), "trainer.strategy.devize",
         f"trainer.strategy={{_target_:{_SINGLE},devize:cpu}}",
         check=validate_targets, closest="trainer.strategy.device"),
    Case("tokenizer", "experiment/tok.yaml", "# @package _global_\ntokenizer: {vocab_sise: 512}\n",
         "# @package _global_\ntokenizer: {vocab_size: 512}\n", ("experiment=tok",), "tokenizer.vocab_sise",
         "+tokenizer.vocab_sise=512", closest="tokenizer.vocab_size"),
    Case("paths", "paths/scratch.yaml", "defaults: [default, _self_]\ncache_dirr: /tmp/x\n",
         "defaults: [default, _self_]\ncache_dir: /tmp/x\n", ("paths=scratch",), "paths.cache_dirr",
         "+paths.cache_dirr=/tmp/x", closest="paths.cache_dir"),
    Case("modality", "modality/plain.yaml", "name: text\nwraper: none\n", "name: text\n", ("modality=plain",),
         "modality.wraper", "+modality.wraper=none"),
    Case("callbacks", "callbacks/quiet.yaml", "defaults: [default, _self_]\nprogress: {refresh_ratee: 0}\n",
         "defaults: [default, _self_]\nprogress: {refresh_rate: 0}\n", ("callbacks=quiet",),
         "callbacks.progress.refresh_ratee", "+callbacks.progress.refresh_ratee=0", check=validate_targets,
         closest="callbacks.progress.refresh_rate"),
    Case("logger", "logger/plain.yaml",
         "csv: {_target_: lightning.pytorch.loggers.CSVLogger, name: csv, versionn: ''}\n",
         "csv: {_target_: lightning.pytorch.loggers.CSVLogger, name: csv, version: ''}\n", ("logger=plain",),
         "logger.csv.versionn", "+logger.csv.versionn=x", check=validate_targets, closest="logger.csv.version"),
    Case("eval", "eval/quick.yaml", "defaults: [callback, _self_]\ntasks: {gsm8k: {limt: 4}}\n",
         "defaults: [callback, _self_]\ntasks: {gsm8k: {limit: 4}}\n", ("eval=quick",), "eval.tasks.gsm8k.limt",
         "+eval.tasks.gsm8k.limt=4", closest="eval.tasks.gsm8k.limit"),
    Case("curation", "curation/strict.yaml",
         "defaults: [heuristic_dedup, _self_]\nname: strict\nstages: {dedup: {threshhold: 0.9}}\n",
         "defaults: [heuristic_dedup, _self_]\nname: strict\nstages: {dedup: {threshold: 0.9}}\n",
         ("curation=strict",), "curation.stages.dedup.threshhold", "+curation.stages.dedup.threshhold=0.9",
         base=("curation=heuristic_dedup",), closest="curation.stages.dedup.threshold"),
    Case("top level", "experiment/seeded.yaml", "# @package _global_\nseeds: 3\n", "# @package _global_\nseed: 3\n",
         ("experiment=seeded",), "seeds", "+seeds=3", closest="seed"),
    Case("chain", "experiment/chain2.yaml",
         "# @package _global_\nname: chain2\nchain:\n  phases:\n    - {phase: pretrain, overides: [model=nano]}\n",
         "# @package _global_\nname: chain2\nchain:\n  phases:\n    - {phase: pretrain, overrides: [model=nano]}\n",
         ("experiment=chain2",), "chain.phases[0].overides", "+chain.phases=[{phase:pretrain,overides:['seed=1']}]",
         closest="chain.phases[0].overrides"),
]


def _with_model(overrides: tuple[str, ...], hf_dir: Path) -> list[str]:
    """A continued phase (SFT) needs a model to start from."""
    return [*overrides, f"phase.init_from=hf:{hf_dir}"] if "phase=sft" in overrides else list(overrides)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_unknown_key_in_a_new_option_file_names_the_key_and_the_file(case, conf, hf_dir):
    (conf / case.file).write_text(case.bad)
    with _composed(conf, _with_model(case.select, hf_dir)) as cfg:
        if case.check is validate_targets:  # a Lightning target: the light check leaves it to validate_targets
            validate_config(cfg)
        with pytest.raises(ConfigError) as error:
            case.check(cfg)
    message = str(error.value)
    assert message.startswith(f"unknown config key {case.key!r} in {conf / case.file}"), message
    if case.closest:
        assert f"(did you mean {case.closest!r}?)" in message, message


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_the_same_option_file_with_the_right_key_passes(case, conf, hf_dir):
    (conf / case.file).write_text(case.good)
    with _composed(conf, _with_model(case.select, hf_dir)) as cfg:
        _both(cfg)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_unknown_key_added_on_the_command_line_names_the_override(case, conf, hf_dir):
    """As ``python train.py <override>`` sees it (the Hydra job's command line is known)."""
    with _composed(conf, [case.plus, *_with_model(case.base, hf_dir)], as_hydra_job=True) as cfg:
        with pytest.raises(ConfigError) as error:
            _both(cfg)
    message = str(error.value)
    assert message.startswith(f"unknown config key {case.key!r} from the command line override {case.plus}"), message


def test_outside_a_hydra_job_the_override_is_inferred_from_no_file_holding_the_key(conf):
    """``hydra.compose`` keeps no command line: the message says the key is in no file and how it was added."""
    with _composed(conf, ["+model.hidden_sise=3"]) as cfg, pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert "from an override such as +model.hidden_sise=3 (no file in" in str(error.value)


def test_in_a_hydra_job_only_files_of_the_composition_are_named(conf):
    """The same typo in an option that was not chosen is not blamed; a file and an override are both named."""
    (conf / "model" / "wide.yaml").write_text("defaults: [tiny, _self_]\nname: wide\nhidden_sise: 320\n")
    (conf / "model" / "wider.yaml").write_text("defaults: [tiny, _self_]\nname: wider\nhidden_sise: 640\n")
    with _composed(conf, ["model=wide", "model.hidden_sise=4"], as_hydra_job=True) as cfg, \
            pytest.raises(ConfigError) as error:
        validate_config(cfg)
    message = str(error.value)
    assert f"in {conf / 'model' / 'wide.yaml'} and the command line override model.hidden_sise=4" in message
    assert "wider.yaml" not in message


def test_a_misspelt_source_name_is_not_a_new_source(conf):
    """``+data_mix.sources.stdlb.max_files=3`` would add a source without a _target_."""
    with _composed(conf, ["+data_mix.sources.stdlb.max_files=3"]) as cfg, pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert "did you mean 'data_mix.sources.stdlib'?" in str(error.value)


def test_a_target_that_takes_kwargs_accepts_any_key_and_hydra_keys_pass(conf):
    with _composed(conf, ["+logger.wandb.anything_wandb_init_takes=1", "+callbacks.progress._recursive_=false"]) \
            as cfg:
        _both(cfg)


def test_a_target_whose_package_is_not_installed_fails_in_the_light_check(conf):
    with _composed(conf, ["+callbacks.extra={_target_: nosuchpackage.Callback}"]) as cfg, \
            pytest.raises(ConfigError, match=r"callbacks\.extra\._target_: cannot import 'nosuchpackage.Callback'"):
        validate_config(cfg)


def test_eval_source_keys_are_the_embedded_loaders_parameters(conf):
    with _composed(conf, ["+eval.tasks.gsm8k.source.n_heldot=3"]) as cfg, pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert "did you mean 'eval.tasks.gsm8k.source.n_heldout'?" in str(error.value)


def test_heavy_targets_are_recognised_without_importing_them():
    """What keeps validate_config free of torch: modules are read, not imported, to tell."""
    assert is_light("infir.data.sources.champ.ChampSource")
    assert is_light("infir.data.curation.stages.MinHashDedupStage")
    assert is_light("hydra.utils.get_class")
    assert not is_light("lightning.pytorch.callbacks.ModelCheckpoint")
    assert heavy_import("infir.training.throughput") in ("torch", "lightning")
    assert heavy_import("infir.training.loggers") is not None  # through its own imports of lightning
    assert heavy_import("infir.training.schedules") is None


def _default_groups() -> set[str]:
    """Groups the default composition selects (train.yaml's defaults and nested ones such as the phase's
    data_mix): `group=option` picks another option of those, `+group=option` adds any other group."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return set(compose(config_name="train", return_hydra_config=True).hydra.runtime.choices)


def _committed_options() -> list:
    """Every option of every group (conf/<group>/*.yaml), with what it needs to compose on its own."""
    in_defaults = _default_groups()
    params = []
    # conf/synth/ is the group of `python -m infir.synth` (conf/synthesize.yaml), tested in test_synth_pipeline.py
    for group_dir in sorted(p for p in (REPO / "conf").iterdir() if p.is_dir() and p.name not in ("hydra", "synth")):
        for option in sorted(group_dir.glob("*.yaml")):
            group, name = group_dir.name, option.stem
            overrides = [f"{group}={name}" if group in in_defaults else f"+{group}={name}"]
            vision = (group == "modality" and name.startswith("vision")) or (group, name) == ("eval", "vl_embedded") or \
                (group == "phase" and name.startswith("mm_")) or (group == "data_mix" and "_vl_" in name)
            if vision:  # image data, the VL phases, the vision wrapper and its eval suite go together
                context = {"phase": "phase=mm_sft", "modality": "modality=vision", "eval": "eval=vl_embedded"}
                overrides = [v for k, v in context.items() if k != group] + overrides
            elif group == "data_mix" and "sft" in name:
                overrides.insert(0, "phase=sft")  # an SFT mix needs the SFT phase (epochs)
            marks = []
            params.append(pytest.param(overrides, id=f"{group}={name}", marks=marks))
    return params


@pytest.mark.parametrize("overrides", _committed_options())
def test_every_committed_option_composes_and_passes_both_checks(overrides, hf_dir):
    """The schema accepts every option the repo ships (each alone; continued phases get an HF dir)."""
    needs_model = any(part in o for o in overrides for part in ("anneal", "sft", "phase=mm_", "infir_vl_")) or \
        overrides[0] == "phase=sft"
    if needs_model:
        overrides = [*overrides, f"phase.init_from=hf:{hf_dir}"]
    with _composed(REPO / "conf", overrides) as cfg:
        _both(cfg)


def _train_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args, f"paths.output_dir={tmp_path / 'out'}",
                           f"paths.cache_dir={tmp_path / 'cache'}"], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=300)


def _assert_one_line_and_no_data(proc: subprocess.CompletedProcess, tmp_path: Path) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[infir] config error: "), lines
    assert not (tmp_path / "cache").exists(), "data was prepared before the config was validated"
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and ".hydra" not in p.parts]
    assert written == [], f"files other than Hydra's own run record: {written}"
    return lines[0]


def test_train_py_names_an_unknown_key_added_on_the_command_line(tmp_path):
    line = _assert_one_line_and_no_data(_train_cli(["+model.hidden_sise=3"], tmp_path), tmp_path)
    assert "unknown config key 'model.hidden_sise' from the command line override +model.hidden_sise=3 " \
           "(did you mean 'model.hidden_size'?); the model keys are: " in line


def test_train_py_names_the_option_file_of_an_unknown_key(tmp_path):
    """The reported bug: a new conf/model/wide.yaml with `hidden_sise: 320` (here via --config-dir)."""
    conf = Path(shutil.copytree(REPO / "conf", tmp_path / "conf"))
    (conf / "model" / "wide.yaml").write_text("defaults: [tiny, _self_]\nname: wide\nhidden_sise: 320\n")
    line = _assert_one_line_and_no_data(_train_cli(["--config-dir", str(conf), "model=wide"], tmp_path), tmp_path)
    assert re.search(rf"unknown config key 'model.hidden_sise' in {re.escape(str(conf / 'model' / 'wide.yaml'))} "
                     r"\(did you mean 'model.hidden_size'\?\)", line), line
