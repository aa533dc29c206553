"""Run pre-training -> annealing -> SFT as one command, each phase reading the previous phase's export.

Every phase is an ordinary ``train()`` run composed from ``conf/train.yaml`` with ``phase=<name>``,
the command line's own overrides and ``phase.init_from=hf:<previous export>``, in its own directory
``<chain dir>/<index>_<phase>``. A phase whose export is complete (``infir_training.json`` written
last) is skipped on a re-run; an unfinished one resumes from its last checkpoint (``resume=auto``),
so killing the chain and running the same command again finishes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from infir.training.phases import TRAINING_STATE_FILE

log = logging.getLogger(__name__)
_CHAIN_ONLY_KEYS = ("experiment", "hydra.", "chain.")


def phase_overrides(cli_overrides: Sequence[str]) -> list[str]:
    """The user's overrides that apply to every phase (not the chain's own experiment/chain keys)."""
    return [o for o in cli_overrides if not o.lstrip("+~").startswith(_CHAIN_ONLY_KEYS)]


def run_chain(cfg: DictConfig) -> dict[str, str]:
    """Run ``cfg.chain.phases`` in order; returns {phase dir name: its HF export}."""
    from infir.training.train import train

    chain_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(cfg.paths.run_dir)
    cli = phase_overrides(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    exports: dict[str, str] = {}
    previous: Path | None = None
    for index, step in enumerate(cfg.chain.phases):
        label = f"{index}_{step.phase}"
        run_dir = chain_dir / label
        export = run_dir / "hf_export"
        if (export / TRAINING_STATE_FILE).is_file():
            log.info("chain: %s already finished (%s); skipping", label, export)
        else:
            overrides = [f"phase={step.phase}", f"name={cfg.name}", *cli, *list(step.get("overrides") or [])]
            phase_cfg = compose(config_name="train", overrides=overrides)
            if previous is not None:  # set directly: a run dir name may hold characters the override grammar reads
                phase_cfg.phase.init_from = f"hf:{previous}"
                overrides.append(f"phase.init_from=hf:{previous}")
            log.info("chain: running %s with %s", label, overrides)
            train(phase_cfg, identity=(run_dir, f"{cfg.name}/{label}", overrides))
        exports[label] = str(export)
        previous = export
    (chain_dir / "chain.json").write_text(json.dumps(exports, indent=2))
    print(f"[infir] chain finished: {chain_dir / 'chain.json'}")
    return exports
