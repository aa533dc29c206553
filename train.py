"""Train a model as the composed Hydra config says: `python train.py [overrides]`.

Sweeps: `python train.py -m model=tiny,nano seed=1,2`. See README.md.
"""

import hydra
from omegaconf import DictConfig

import infir  # noqa: F401  (installs the torchvision op guard before anything imports torchvision)
from infir.hydra_support import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from infir.training.train import train

    return train(cfg)


if __name__ == "__main__":
    main()
