"""``python -m infir.data curation=<recipe> data_mix=<mix>``: curate and print the per-stage funnel.

Curates the training split of the mix's curated sources (``data_mix.curate``), or,
with ``inputs=[{path: ..., format: jsonl, domain: web}, ...]``, any files. Results go
to the content-addressed cache that ``train.py`` reuses.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

import infir  # noqa: F401  (torchvision op guard)
from infir.hydra_support import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="curate")
def main(cfg: DictConfig) -> None:
    from infir.data.curation.app import run_curation_app

    run_curation_app(cfg)


if __name__ == "__main__":
    main()
