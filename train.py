"""Train a model as the composed Hydra config says: `python train.py [overrides]`.

Sweeps: `python train.py -m model=tiny,nano seed=1,2`. See README.md.

Only light modules load before the config is checked (``infir.config``: no torch, Lightning or
transformers), so a bad value fails in about the time Hydra's own errors take: one line on stderr naming
the key, exit status 2 (``HYDRA_FULL_ERROR=1`` shows the traceback instead).
"""

import math
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import infir  # noqa: F401  (cheap: puts the torchvision op guard's import hook in place)
from infir.config import ConfigError, validate_config
from infir.hydra_support import register_resolvers

register_resolvers()

CONFIG_ERROR_EXIT_CODE = 2  # as `python -m infir.eval` set-up errors


def _sweepable(metric: float) -> float:
    """A diverged or metric-less run (NaN) as the worst value for the sweeper's direction: Optuna rejects NaN
    and would end the whole study on one bad trial."""
    if not math.isnan(metric):
        return metric
    direction = OmegaConf.select(HydraConfig.get(), "sweeper.direction", default="minimize") \
        if HydraConfig.initialized() else "minimize"
    maximize = "maximize" in str(direction)
    print(f"[infir] the optimised metric is NaN; reporting {'-inf' if maximize else 'inf'} to the sweeper",
          file=sys.stderr)
    return -math.inf if maximize else math.inf


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        validate_config(cfg)
        if cfg.get("chain"):  # experiment=embedded_chain: pretrain -> anneal -> SFT in one command
            from infir.training.chain import run_chain

            run_chain(cfg)
            return 0.0
        from infir.training.train import train

        return _sweepable(train(cfg))
    except ConfigError as error:  # also those only the data can reveal (e.g. synthetic documents in pre-training)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"[infir] config error: {error}", file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT_CODE)  # SystemExit passes through Hydra's error report: no traceback


if __name__ == "__main__":
    main()
