"""Config checks that must fail before any data is prepared or a model is built.

Two public checks, both on the composed config:

* :func:`validate_config`, right after Hydra composes (``train.py``) and again at the start of ``train()``:
  every key our own groups write out (``schema.py``: an unknown key such as ``model.hidden_sise`` is an
  error naming the key, the file or override that set it and the closest known key) before anything is
  imported, then the values (``checks.py``), then the keys of ``_target_`` nodes whose targets are light to
  import and the eval tasks. It imports no torch, Lightning or transformers, so a bad config fails in
  about the time Hydra's own errors take.
* :func:`validate_targets`, inside ``train()`` after those heavy imports and before any data work: the keys
  of the remaining ``_target_`` nodes (the Trainer, its strategy, Lightning callbacks and loggers) against
  their constructors' signatures.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from infir.config.checks import PRECISIONS, check_eval_tasks, check_values, provided_domains
from infir.config.errors import ConfigError
from infir.config.schema import KNOWN_TOP_LEVEL_KEYS, TRAINER_OWN_KEYS, check_keys

__all__ = ["ConfigError", "KNOWN_TOP_LEVEL_KEYS", "PRECISIONS", "TRAINER_OWN_KEYS", "provided_domains",
           "validate_config", "validate_targets"]


def _plain(cfg: DictConfig) -> dict:
    """The config as plain containers, interpolations and ``???`` left as written (nothing is resolved)."""
    return OmegaConf.to_container(cfg, resolve=False)


def validate_config(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` naming the first unknown key or bad value; imports nothing heavy.

    Keys of ``_target_`` nodes whose targets import torch, Lightning or transformers are left to
    :func:`validate_targets`.
    """
    keys = check_keys(_plain(cfg), import_heavy=False)  # our own groups' keys: nothing imported yet
    try:
        check_values(cfg)
        keys.finish()  # target and eval keys (imports the targets' and the eval checks' modules)
        check_eval_tasks(cfg)
    except MissingMandatoryValue as error:  # a `???` the command line did not fill
        raise ConfigError(f"{error.full_key} must be set on the command line ({error.full_key}=...)") from None


def validate_targets(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for a key no ``_target_`` node's target takes, importing every target.

    Call it after torch/Lightning/transformers are imported (inside ``train()``), before any data work:
    it imports the Trainer, strategy, callback and logger classes to read their signatures.
    """
    check_keys(_plain(cfg), import_heavy=True).finish()
