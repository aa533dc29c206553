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
    if cfg.get("chain"):  # experiment=embedded_chain: pretrain -> anneal -> SFT in one command
        from infir.training.chain import run_chain

        run_chain(cfg)
        return 0.0
    from infir.training.train import train

    return train(cfg)


if __name__ == "__main__":
    main()
