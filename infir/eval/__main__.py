"""``python -m infir.eval model=<HF dir or .ckpt> eval=<suite>``: score a model, write results JSON + JSONL.

``model=`` is accepted as shorthand for ``model_path=`` (``model`` is also the training config group
of model sizes, which this app does not load). A set-up error (bad path, unknown task or key, unusable
records) is one line on stderr and exit status 2, before any model work; ``HYDRA_FULL_ERROR=1`` shows the
traceback instead.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

import infir  # noqa: F401  (torchvision op guard)
from infir.hydra_support import register_resolvers

register_resolvers()

SETUP_ERRORS = (FileNotFoundError, NotADirectoryError, PermissionError, ValueError)
SETUP_EXIT_CODE = 2


def model_shorthand(argv: list[str]) -> list[str]:
    """Rewrite ``model=X`` to ``model_path=X`` so the documented command works."""
    return [f"model_path={arg[len('model='):]}" if arg.startswith("model=") else arg for arg in argv]


def _fail(message: str) -> None:
    print(f"[infir] eval: {message}", file=sys.stderr)
    sys.exit(SETUP_EXIT_CODE)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    # no heavy imports before these checks: a wrong path, task or key fails in about a second
    from infir.eval.checks import check_eval_config
    from infir.eval.loading import check_model_path

    if OmegaConf.is_missing(cfg, "model_path"):
        _fail("model=<HF model dir or .ckpt> is required")
    try:
        check_model_path(cfg.model_path)
        check_eval_config(OmegaConf.to_container(cfg.eval, resolve=True))
        from infir.eval.app import prepare_eval, run_prepared

        prepared = prepare_eval(cfg)
    except SETUP_ERRORS as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        _fail(str(exc))
    run_prepared(prepared)


if __name__ == "__main__":
    sys.argv = model_shorthand(sys.argv)
    main()
