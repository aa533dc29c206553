"""``python -m infir.synth synth=<recipe>``: synthesise an SFT file from seed instructions; print where it went.

With no arguments it runs the embedded default (``conf/synth/embedded.yaml``). A set-up error (a missing
generator model, a bad stage setting) is one line on stderr and exit status 2; ``HYDRA_FULL_ERROR=1`` shows
the traceback instead.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

import infir  # noqa: F401  (torchvision op guard)
from infir.hydra_support import register_resolvers

register_resolvers()

SETUP_ERRORS = (FileNotFoundError, NotADirectoryError, PermissionError, ValueError, MissingMandatoryValue)


@hydra.main(version_base="1.3", config_path="../../conf", config_name="synthesize")
def main(cfg: DictConfig) -> None:
    from infir.synth.app import run_synth

    try:
        result = run_synth(cfg)
    except SETUP_ERRORS as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"[infir] synth: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"\n[infir] synth recipe '{cfg.synth.name}': {len(result.samples)} samples\n"
          f"  SFT file:   {result.sft_file}\n  validation: {result.validation_file}\n"
          f"  report:     {result.report}\n  stages:     {result.work_dir}", flush=True)


if __name__ == "__main__":
    main()
