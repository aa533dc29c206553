"""Console output: Lightning lines once, known noise hidden (real warnings kept), the config tree, progress lines."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.fabric.utilities.warnings import PossibleUserWarning
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities.rank_zero import rank_zero_info
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from infir.hydra_support import register_resolvers
from infir.training import console
from infir.training.console import ProgressLine, print_config_tree, progress_bar_visible, quiet_console

REPO = Path(__file__).resolve().parents[1]
_LOGGERS = ("", "lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
            "lightning.fabric.utilities.rank_zero")


@pytest.fixture
def logging_state(monkeypatch: pytest.MonkeyPatch):
    """Save and restore what quiet_console changes: handlers, filters, propagation, warning filters, the env."""
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "unset-by-test")
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")  # restored (removed) after the test
    saved = {name: (list(lg.handlers), list(lg.filters), lg.propagate, lg.level)
             for name in _LOGGERS for lg in [logging.getLogger(name)]}
    with warnings.catch_warnings():  # the filters quiet_console adds stay in this test
        yield
    for name, (handlers, filters, propagate, level) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:], lg.filters[:], lg.propagate = handlers, filters, propagate
        lg.setLevel(level)
    try:
        from huggingface_hub.utils import enable_progress_bars
        enable_progress_bars()
    except ImportError:
        pass


def _hydra_and_lightning_handlers() -> tuple[io.StringIO, io.StringIO]:
    """The state `python train.py` runs in: Hydra's job_logging root console handler, plus the stderr handler
    `lightning/__init__.py` adds to the `lightning` logger (propagation on, as Lightning leaves it)."""
    hydra_out, lightning_err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    hydra_console = logging.StreamHandler(hydra_out)
    hydra_console.setFormatter(logging.Formatter("[%(name)s][%(levelname)s] %(message)s"))
    root.handlers[:] = [hydra_console]
    root.setLevel(logging.INFO)
    lightning_console = logging.StreamHandler(lightning_err)
    lightning_console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    lightning = logging.getLogger("lightning")
    lightning.handlers[:] = [lightning_console]
    lightning.propagate = True
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    return hydra_out, lightning_err


def test_lightning_lines_print_once_and_its_tips_are_hidden(logging_state) -> None:
    hydra_out, lightning_err = _hydra_and_lightning_handlers()
    rank_zero_info("GPU available: False, used: False")
    assert (hydra_out.getvalue() + lightning_err.getvalue()).count("GPU available") == 2  # the reported bug

    quiet_console()
    quiet_console()  # idempotent
    hydra_out.seek(0), hydra_out.truncate(), lightning_err.seek(0), lightning_err.truncate()
    rank_zero_info("TPU available: False, using: 0 TPU cores")
    rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
    printed = hydra_out.getvalue() + lightning_err.getvalue()
    assert printed.count("TPU available") == 1
    assert "[lightning.pytorch.utilities.rank_zero][INFO] TPU available" in hydra_out.getvalue()  # Hydra's format
    assert "litlogger" not in printed


def test_without_a_root_handler_lightning_keeps_its_own(logging_state) -> None:
    lightning_err = io.StringIO()
    logging.getLogger().handlers[:] = []
    logging.getLogger("lightning").handlers[:] = [logging.StreamHandler(lightning_err)]
    quiet_console()
    rank_zero_info("GPU available: False, used: False")
    assert lightning_err.getvalue().count("GPU available") == 1


def _raise_known_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real calls that warned on every run: Lightning's pytree helper (torch's LeafSpec deprecation)
    and Lightning's SLURM check on a machine with an `srun` binary."""
    from lightning.pytorch.utilities._pytree import _tree_flatten

    _tree_flatten(1.0)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/srun" if name == "srun" else None)
    SLURMEnvironment._validate_srun_used()


def _messages(caught: list[warnings.WarningMessage]) -> str:
    return "\n".join(str(w.message) for w in caught)


def test_known_noise_warnings_are_hidden_and_real_ones_still_show(logging_state, monkeypatch) -> None:
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.delenv("SLURM_JOB_NAME", raising=False)
    with warnings.catch_warnings(record=True) as before:
        warnings.simplefilter("always")
        _raise_known_noise(monkeypatch)
    assert "LeafSpec" in _messages(before) and "`srun` command" in _messages(before)  # they do warn

    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        quiet_console()
        _raise_known_noise(monkeypatch)
        for key in ("val/loss", "train/extra"):  # Lightning's advice under DDP; our val/ metrics are pre-reduced
            warnings.warn(f"It is recommended to use `self.log('{key}', ..., sync_dist=True)` when logging on "
                          "epoch level in distributed setting to accumulate the metric across devices.",
                          PossibleUserWarning)
        warnings.warn("real problem")
        warnings.warn("some other library change", FutureWarning)
    shown = _messages(after)
    assert "LeafSpec" not in shown and "srun" not in shown and "'val/loss'" not in shown
    assert "real problem" in shown and "some other library change" in shown and "'train/extra'" in shown
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_srun_warning_stays_for_a_multi_task_slurm_job(logging_state, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")  # an interactive allocation: Lightning still checks srun
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_console()
        _raise_known_noise(monkeypatch)
    assert "`srun` command" in _messages(caught)


def test_a_users_progress_bar_choice_is_kept(logging_state, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    quiet_console()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"


def test_config_tree_orders_groups_and_survives_missing_and_unresolvable_values(tmp_path, capsys) -> None:
    cfg = OmegaConf.create({
        "trainer": {"max_steps": 80, "precision": "bf16-mixed"},
        "model": {"hidden_size": 64, "head_dim": "${model.hidden_size}"},
        "name": "embedded_pretrain",
        "paths": {"run_dir": "${hydra:runtime.output_dir}", "cache": "${no_such_resolver:x}",
                  "gone": "${does.not.exist}"},
        "data_mix": {"weights": {"code": 0.5, "math": 0.5}, "sources": [{"kind": "stdlib"}], "tags": ["a", "[b]"]},
        "tokenizer": {"path": "???"},
    })
    save_to = tmp_path / "config_tree.log"
    print_config_tree(cfg, save_to=save_to)
    printed = capsys.readouterr().out
    assert printed.count("data_mix") == 1  # printed once
    saved = save_to.read_text()
    assert "\x1b[" not in saved  # plain text
    for text in (printed, saved):
        order = [text.index(k) for k in ("name", "data_mix", "tokenizer", "model", "trainer", "paths")]
        assert order == sorted(order)
        assert "max_steps: 80" in text and "code: 0.5" in text
        assert "head_dim: 64" in text  # resolved
        assert "path: ???" in text
        assert "${hydra:runtime.output_dir} (unresolved)" in text and "${does.not.exist} (unresolved)" in text
        assert "tags: [a, [b]]" in text  # rich markup in values is printed as is
        assert "kind: stdlib" in text


def test_config_tree_of_the_composed_smoke_config(tmp_path, capsys) -> None:
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["debug=smoke"])
    print_config_tree(cfg, save_to=tmp_path / "tree.log")
    printed = capsys.readouterr().out
    assert "progress_line" in printed and "ProgressLine" in printed
    assert re.search(r"token_budget: 40960", printed)
    saved = (tmp_path / "tree.log").read_text()
    assert saved.count("── callbacks\n") == 1 and "stages: {}" in saved


def test_config_tree_prints_nothing_on_other_ranks(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    print_config_tree(OmegaConf.create({"model": {"hidden_size": 64}}), save_to=tmp_path / "t.log")
    assert capsys.readouterr().out == "" and not (tmp_path / "t.log").exists()


class _Toy(L.LightningModule):
    """Logs what CausalLMModule logs, so the progress line has real values to show."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
        self.log("train/loss", loss, on_step=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True)
        self.log("train/tokens_seen", float((self.global_step + 1) * 256), on_step=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=3e-3)


def _fit(callbacks: list, enable_progress_bar: bool, max_steps: int = 12, ckpt_path: Path | None = None) -> L.Trainer:
    data = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    trainer = L.Trainer(max_steps=max_steps, max_epochs=1, val_check_interval=6, limit_val_batches=2, logger=False,
                        enable_checkpointing=False, enable_model_summary=False, accelerator="cpu", devices=1,
                        enable_progress_bar=enable_progress_bar, callbacks=callbacks, num_sanity_val_steps=0)
    trainer.fit(_Toy(), DataLoader(data, batch_size=4), DataLoader(data, batch_size=4), ckpt_path=ckpt_path)
    return trainer


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "infir.training.console"]


def test_progress_line_without_a_bar(caplog) -> None:
    caplog.set_level(logging.INFO, logger="infir.training.console")
    _fit([ProgressLine(every_n_steps=4, every_s=3600)], enable_progress_bar=False)
    lines = _lines(caplog)
    assert lines[0].startswith("training 12 steps")
    steps = [line for line in lines if line.startswith("step ")]
    assert [s.split(" |")[0] for s in steps] == ["step 4/12 (33%)", "step 8/12 (67%)"]
    assert re.fullmatch(r"step 4/12 \(33%\) \| train/loss \d+\.\d{3} \| lr 3\.0e-03 \| [\d.]+k? tok/s \| "
                        r"eta \d+:\d\d", steps[0]), steps[0]
    validations = [line for line in lines if line.startswith("validation at step")]
    assert len(validations) == 2 and all("val/loss" in v for v in validations)
    assert [line for line in lines if line.startswith("validating at step")] == \
        ["validating at step 6 ...", "validating at step 12 ..."]
    assert lines[-1].startswith("training done: step 12/12")


class _SaveAt(L.Callback):
    """A mid-epoch checkpoint, as ModelCheckpoint writes them (one saved after fit ends would not resume)."""

    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.path.exists():
            trainer.save_checkpoint(self.path)


def test_progress_line_of_a_resumed_run_counts_from_its_step(caplog, tmp_path) -> None:
    _fit([_SaveAt(6, tmp_path / "step6.ckpt")], enable_progress_bar=False, max_steps=8)
    caplog.set_level(logging.INFO, logger="infir.training.console")
    _fit([ProgressLine(every_n_steps=4, every_s=3600)], enable_progress_bar=False, ckpt_path=tmp_path / "step6.ckpt")
    lines = _lines(caplog)
    assert lines[0].startswith("training 12 steps, resuming at step 6")
    assert [line.split(" |")[0] for line in lines if line.startswith("step ")] == ["step 10/12 (83%)"]


def test_progress_line_every_few_seconds(caplog) -> None:
    caplog.set_level(logging.INFO, logger="infir.training.console")
    _fit([ProgressLine(every_n_steps=1000, every_s=1e-6)], enable_progress_bar=False)
    steps = [line.split(" |")[0] for line in _lines(caplog) if line.startswith("step ")]
    assert steps == [f"step {i}/12 ({100 * i / 12:.0f}%)" for i in range(1, 12)]


def test_progress_line_is_silent_while_a_bar_is_visible(caplog, monkeypatch) -> None:
    monkeypatch.setattr(console, "stdout_is_terminal", lambda: True)
    caplog.set_level(logging.INFO, logger="infir.training.console")
    _fit([ProgressLine(every_n_steps=1, every_s=1e-6), TQDMProgressBar(refresh_rate=5)], enable_progress_bar=True)
    assert _lines(caplog) == []


def test_bar_visibility_rules(monkeypatch) -> None:
    def trainer(bar):
        return L.Trainer(logger=False, accelerator="cpu", devices=1, enable_checkpointing=False,
                         callbacks=[bar] if bar else [], enable_progress_bar=bar is not None)

    monkeypatch.setattr(console, "stdout_is_terminal", lambda: True)
    assert progress_bar_visible(trainer(TQDMProgressBar(refresh_rate=10)))
    assert not progress_bar_visible(trainer(TQDMProgressBar(refresh_rate=0)))  # debug=smoke
    assert not progress_bar_visible(trainer(None))
    monkeypatch.setattr(console, "stdout_is_terminal", lambda: False)  # logs, CI
    assert not progress_bar_visible(trainer(TQDMProgressBar(refresh_rate=10)))


@pytest.mark.parametrize("kwargs, key", [({"every_n_steps": 0}, "every_n_steps"), ({"every_s": -1}, "every_s")])
def test_bad_progress_line_settings_name_the_key(kwargs, key) -> None:
    with pytest.raises(ValueError, match=rf"callbacks\.progress_line\.{key}"):
        ProgressLine(**kwargs)
