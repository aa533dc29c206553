"""FSDP2 (``torch.distributed.fsdp.fully_shard``) through Lightning's ``ModelParallelStrategy``.

Each decoder layer is one sharding unit and the model itself the root unit (embeddings, final norm, the LM
head, tied or not): parameters, gradients and AdamW state are split across all processes, and a layer's
full weights exist only while it runs. Checkpoints are sharded (a ``step*.ckpt`` folder in PyTorch's
distributed-checkpoint format plus ``meta.pt`` with the step, loops, data position and RNG state), so a
resume on the same world size loads each rank's shard; the HF export and the eval callback gather the full
weights (:func:`full_model_state_dict`).

:class:`FSDP2Strategy` is ``ModelParallelStrategy`` with every process in the data-parallel (sharding)
dimension and no tensor parallelism: its ``auto`` sizes would make a single node tensor-parallel.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.strategies import ModelParallelStrategy

from infir.training.speed.compile import decoder_layers

class FSDP2Strategy(ModelParallelStrategy):
    """Fully sharded data parallel over every process (``trainer=fsdp2``)."""

    def __init__(self, **kwargs: Any) -> None:
        for key in ("data_parallel_size", "tensor_parallel_size"):
            if key in kwargs:
                raise ValueError(f"trainer.strategy.{key}: FSDP2Strategy shards over every process; use "
                                 "lightning.pytorch.strategies.ModelParallelStrategy for 2-D parallelism")
        super().__init__(data_parallel_size=1, tensor_parallel_size=1, **kwargs)

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``model`` has been through ``fully_shard``."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def shard_model(model: torch.nn.Module, mesh: Any, param_dtype: torch.dtype | None) -> None:
    """``fully_shard`` each decoder layer, then the model (its root). ``param_dtype`` (bf16 under bf16-mixed):
    the dtype weights are gathered and computed in, halving all-gather traffic; gradients are reduced in fp32
    and the sharded master weights stay fp32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32 if param_dtype else None)
    layers = decoder_layers(model)
    if not layers:
        raise ValueError("trainer=fsdp2: the model has no transformers decoder layers to shard")
    for layer in layers:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)


def full_model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded weights on CPU, keyed as the plain model's. A collective for a sharded model: every rank
    must call it; rank 0 gets the full dict and the others an empty one (nothing is gathered twice)."""
    if not is_sharded(model):
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def unsharded_copy(model: torch.nn.Module, weights: dict[str, torch.Tensor], device: torch.device) -> torch.nn.Module:
    """A plain (unsharded) copy of a sharded transformers model from its gathered ``weights``, for work one
    rank does alone (the eval callback's generation)."""
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise ValueError(f"the eval callback under trainer=fsdp2 needs a transformers model, "
                         f"not {type(model).__name__}")
    plain_class = next(c for c in type(model).__mro__ if issubclass(c, PreTrainedModel) and "FSDP" not in c.__name__)
    copy = plain_class(model.config)  # not on the meta device: non-persistent buffers (RoPE) are not in weights
    copy.load_state_dict(weights, strict=True)
    return copy.to(device).eval()
