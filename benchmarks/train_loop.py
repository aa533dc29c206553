"""Training-loop overhead: our Lightning step vs a bare PyTorch loop, same model/batch/precision.

Both sides run the identical computation (the model built by infir's factory,
fp32 cross-entropy on bf16-autocast logits, fused AdamW, grad clipping, the
cosine schedule); ours adds everything the training run adds (Lightning's
loop, per-step logging to CSV, the throughput/MFU callback). Rounds alternate
between the two so machine noise hits both alike.

    python benchmarks/train_loop.py [--model tiny] [--steps 15] [--rounds 3]

Prints tokens/s for each side and the ratio ours / bare (target >= 0.95 on CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import infir  # noqa: E402,F401  (torchvision op guard)
import lightning as L  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from infir.models.causal_lm import build_causal_lm, training_flops_per_token  # noqa: E402
from infir.training.module import CausalLMModule, build_adamw, next_token_loss  # noqa: E402
from infir.training.precision import resolve_precision  # noqa: E402
from infir.training.schedules import LRSchedule  # noqa: E402
from infir.training.throughput import ThroughputMonitor  # noqa: E402

VOCAB = 8192


class RandomTokens(Dataset):
    """Fixed random sequences: data loading is identical for both sides and not what is measured."""

    def __init__(self, n: int, seq_len: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, VOCAB, (n, seq_len + 1), generator=g)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.tokens[i, :-1], "labels": self.tokens[i, 1:], "domain": torch.tensor(0)}


def make_model(model_name: str):
    cfg = OmegaConf.load(REPO / "conf" / "model" / f"{model_name}.yaml")
    if "defaults" in cfg:
        base = OmegaConf.load(REPO / "conf" / "model" / "tiny.yaml")
        cfg = OmegaConf.merge(base, {k: v for k, v in cfg.items() if k != "defaults"})
    torch.manual_seed(0)
    return build_causal_lm(cfg, VOCAB, 0, 1, 2)


OPT = {"lr": 3e-3, "weight_decay": 0.1, "betas": [0.9, 0.95], "eps": 1e-8, "grad_clip": 1.0, "fused": None}


def bare_loop(model_name: str, data: Dataset, batch: int, steps: int, precision: str) -> float:
    model = make_model(model_name).train()
    opt = build_adamw(model, OPT["lr"], OPT["weight_decay"], OPT["betas"], OPT["eps"], None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LRSchedule("cosine", steps + 1, 0))
    loader = iter(DataLoader(data, batch_size=batch))
    use_bf16 = precision.startswith("bf16")

    def step() -> None:
        b = next(loader)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(input_ids=b["input_ids"], use_cache=False).logits
        loss = next_token_loss(logits, b["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["grad_clip"], foreach=True)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # Lightning reads the loss every step for logging; so do we

    step()  # warm-up, not timed (same as the throughput callback)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch * data.tokens.shape[1] / (time.perf_counter() - start)


def lightning_loop(model_name: str, data: Dataset, batch: int, steps: int, precision: str) -> float:
    model = make_model(model_name)
    seq = data.tokens.shape[1] - 1
    module = CausalLMModule(model, OPT, LRSchedule("cosine", steps + 1, 0), ["bench"], batch * seq)
    monitor = ThroughputMonitor(batch * seq, training_flops_per_token(model, seq), 0.0, 1, log_every_n_steps=10)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=steps + 1,
                            logger=CSVLogger(tmp, name="csv", version=""), callbacks=[monitor],
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            log_every_n_steps=10, num_sanity_val_steps=0, limit_val_batches=0)
        timer = _StepTimer()
        trainer.callbacks.append(timer)
        trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=batch))
    return steps * batch * seq / timer.elapsed


class _StepTimer(L.Callback):
    """Wall time from the end of the first (warm-up) step to the end of the last."""

    def __init__(self) -> None:
        self.start = 0.0
        self.elapsed = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if batch_idx == 0:
            self.start = now
        self.elapsed = now - self.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    precision = resolve_precision(args.precision, "cpu")
    data = RandomTokens(args.batch * (args.steps + 2), args.seq_len)
    ours, bare = [], []
    for r in range(args.rounds):
        bare.append(bare_loop(args.model, data, args.batch, args.steps, precision))
        ours.append(lightning_loop(args.model, data, args.batch, args.steps, precision))
        print(f"round {r + 1}: bare {bare[-1]:9.0f} tok/s   infir {ours[-1]:9.0f} tok/s", flush=True)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"\nmodel={args.model} seq={args.seq_len} batch={args.batch} precision={precision} "
          f"threads={torch.get_num_threads()}")
    print(f"bare PyTorch loop: {b:9.0f} tokens/s (median of {args.rounds})")
    print(f"infir (Lightning): {o:9.0f} tokens/s (median of {args.rounds})")
    print(f"ratio infir / bare: {o / b:.3f}  (target >= 0.95)")


if __name__ == "__main__":
    main()
