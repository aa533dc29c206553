"""``python -m infir.eval model=<HF dir or .ckpt> eval=<suite>``: score a model, write results JSON + JSONL.

``model=`` is accepted as shorthand for ``model_path=`` (``model`` is also the training config group
of model sizes, which this app does not load).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import infir  # noqa: F401  (torchvision op guard)
from infir.hydra_support import register_resolvers

register_resolvers()


def model_shorthand(argv: list[str]) -> list[str]:
    """Rewrite ``model=X`` to ``model_path=X`` so the documented command works."""
    return [f"model_path={arg[len('model='):]}" if arg.startswith("model=") else arg for arg in argv]


@hydra.main(version_base="1.3", config_path="../../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from infir.eval.app import run_eval_app

    run_eval_app(cfg)


if __name__ == "__main__":
    sys.argv = model_shorthand(sys.argv)
    main()
