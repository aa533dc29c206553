"""Training throughput: infir's real training step vs a hand-written Hugging Face loop, same batches, one process.

The infir side is what ``train.py`` runs: ``CausalLMModule`` (with the model group's speed switches:
compile, activation checkpointing, chunked loss) fitted by a Lightning ``Trainer`` on a
``PackedMixtureDataModule`` over token streams on disk, with the CSV logger and the throughput/MFU callback.
The plain side is what a researcher writes by hand: the same ``LlamaForCausalLM`` (same init), optionally
``torch.compile``d whole, bf16 autocast, fp32 cross-entropy on the full logits, fused AdamW (decay on every
parameter: the same cost as infir's groups), grad clipping, the same cosine LR, reading its batches from the
same datamodule's loader (with ``--document-masking`` it gets the same per-document attention inputs). Rounds alternate
(plain, infir, plain, ...) so machine noise hits both alike; warm-up steps (compilation, allocation) are not timed.

    python benchmarks/gpu_train.py                             # GPU: Llama-3.2-1B shape, seq 2048 and 4096
    python benchmarks/gpu_train.py --micro-batch 2048:8 4096:4 --document-masking
    python benchmarks/gpu_train.py --find-max-micro-batch      # largest micro-batch per seq, +/- checkpointing
    python benchmarks/gpu_train.py                             # no GPU: a tiny CPU configuration (< 1 min)
    python benchmarks/gpu_train.py --compile regional --loss chunked --document-masking   # CPU: those paths

Prints tokens/s (median of rounds), MFU and peak memory per side, the ratio infir / plain, a summary table
and the fully resolved command line that reproduces the run.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here needs the hub; never reach for it

import infir  # noqa: E402  (first: the torchvision op guard)
import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from torch._dynamo.utils import counters as dynamo_counters  # noqa: E402

from infir.data.corpus import PreparedCorpus  # noqa: E402
from infir.data.datamodule import PackedMixtureDataModule  # noqa: E402
from infir.data.documents import TRAIN, VALIDATION  # noqa: E402
from infir.data.token_shards import SHARD_INFO, token_dtype  # noqa: E402
from infir.models.causal_lm import build_causal_lm, resolve_attn_implementation, training_flops_per_token  # noqa: E402
from infir.models.packed_attention import packed_model_inputs  # noqa: E402
from infir.models.tokenizer import load_tokenizer, train_bpe  # noqa: E402
from infir.training.module import CausalLMModule  # noqa: E402
from infir.training.precision import resolve_precision  # noqa: E402
from infir.training.schedules import LRSchedule  # noqa: E402
from infir.training.speed import COMPILE_MODES, LOSSES  # noqa: E402
from infir.training.throughput import ThroughputMonitor, peak_flops_per_device  # noqa: E402

DOMAIN = "synthetic"
OPT = {"lr": 3e-4, "weight_decay": 0.1, "betas": [0.9, 0.95], "eps": 1e-8, "grad_clip": 1.0, "fused": None}
GPU_DEFAULTS = {"model": "llama3_2_1b", "seq_lens": [2048, 4096], "vocab": 128256, "steps": 20, "rounds": 3,
                "compile": "regional", "loss": "chunked", "plain_compile": True, "num_workers": 4,
                "log_every": 5, "max_micro_batch": 1024}
CPU_DEFAULTS = {"model": "nano", "seq_lens": [128, 256], "vocab": 8192, "steps": 10, "rounds": 2,
                "compile": "eager", "loss": "plain", "plain_compile": False, "num_workers": 0,
                "log_every": 10, "max_micro_batch": 64}
GPU_MICRO_TOKENS = 16384  # GPU default micro-batch: 16k tokens (8 x 2048, 4 x 4096), as the 1B pre-training recipe
CPU_MICRO_BATCH = 8


# ------------------------------------------------------------------------------------------ synthetic corpus

def _write_stream(out_dir: Path, documents: list[np.ndarray], dtype: np.dtype) -> None:
    """One shard in ``token_shards.write_stream``'s layout: concatenated ids, document starts, ``stream.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(d) for d in documents], dtype=np.int64)
    np.concatenate(documents).astype(dtype).tofile(out_dir / "shard_00000.bin")
    np.save(out_dir / "shard_00000.docs.npy", np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
    shard = {"name": "shard_00000", "tokens": int(lengths.sum()), "documents": len(documents)}
    info = {"dtype": dtype.name, "shards": [shard], "tokens": shard["tokens"], "documents": shard["documents"]}
    (out_dir / SHARD_INFO).write_text(json.dumps(info, indent=2))


def _random_documents(rng: np.random.Generator, n_tokens: int, low: int, high: int, eos: int) -> list[np.ndarray]:
    """Documents of 200..3000 random ids in [low, high), each ending with EOS, ``n_tokens`` in all (about)."""
    documents, total = [], 0
    while total < n_tokens:
        doc = rng.integers(low, high, size=int(rng.integers(200, 3001)), dtype=np.int64)
        doc[-1] = eos
        documents.append(doc)
        total += len(doc)
    return documents


def synthetic_corpus(root: Path, vocab: int, train_tokens: int, val_tokens: int) -> PreparedCorpus:
    """A one-domain corpus on disk: a small byte-level BPE (the datamodule reads its byte lengths) and random
    token streams. Train ids span the benchmark vocab (the model's embedding, possibly larger than the
    tokenizer); validation ids stay below the tokenizer's size so the bits-per-byte lookup cannot index past it."""
    texts = [f"document {i}: the quick brown fox {i * 7919 % 1000} jumps over the lazy dog" for i in range(200)]
    train_bpe(texts, 300, 2, root / "tokenizer")
    tokenizer = load_tokenizer(root / "tokenizer")
    specials = max(tokenizer.all_special_ids) + 1
    if vocab <= specials:
        raise ValueError(f"--vocab {vocab} leaves no room beside the {specials} special tokens")
    rng = np.random.default_rng(0)
    eos, dtype = tokenizer.eos_token_id, token_dtype(vocab)
    _write_stream(root / "streams" / DOMAIN / TRAIN, _random_documents(rng, train_tokens, specials, vocab, eos), dtype)
    _write_stream(root / "streams" / DOMAIN / VALIDATION,
                  _random_documents(rng, val_tokens, specials, len(tokenizer), eos), dtype)
    return PreparedCorpus(tokenizer, root / "tokenizer", root / "streams", [DOMAIN], {})


# ---------------------------------------------------------------------------------------------- settings

@dataclasses.dataclass
class Bench:
    """Everything both sides share; one instance per run."""

    device: str
    precision: str
    model_cfg: DictConfig
    vocab: int
    speed: dict[str, Any]
    corpus: PreparedCorpus
    warmup: int
    steps: int
    document_masking: bool
    plain_compile: bool
    num_workers: int
    log_every: int
    peak_flops: float
    log_dir: Path

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    @property
    def bf16(self) -> bool:
        return self.precision.startswith("bf16")

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def clock(self) -> tuple[float, int]:
        """(time, graphs compiled so far) once the device is idle: brackets the timed steps."""
        self.sync()
        return time.perf_counter(), int(dynamo_counters["stats"]["unique_graphs"])


@dataclasses.dataclass
class Side:
    """One side's measurement in one round."""

    tokens_per_s: float
    peak_bytes: int | None  # None on CPU: no per-side peak there
    first_loss: float  # both sides start from the same weights and batch: these should agree
    timed_compiles: int  # graphs compiled inside the timed steps (a recompilation there skews tokens/s)


@dataclasses.dataclass
class Row:
    """Per sequence length: every round of both sides."""

    seq_len: int
    micro_batch: int
    plain_runs: list[Side] = dataclasses.field(default_factory=list)
    infir_runs: list[Side] = dataclasses.field(default_factory=list)


def load_model_cfg(name: str) -> DictConfig:
    """``conf/model/<name>.yaml`` with its Hydra ``defaults`` merged (``nano`` and ``small_100m`` extend ``tiny``)."""
    cfg = OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml")
    if "defaults" not in cfg:
        return cfg
    own = OmegaConf.create({k: v for k, v in cfg.items() if k != "defaults"})
    merged = OmegaConf.create()
    for entry in cfg.defaults:  # in order, _self_ where it stands
        merged = OmegaConf.merge(merged, own if entry == "_self_" else load_model_cfg(str(entry)))
    return merged


def make_model(b: Bench, device: str | None = None) -> torch.nn.Module:
    """The model infir's factory builds, seeded so both sides start from identical weights; initialised on the
    device itself (a 1B model's CPU init takes seconds per side; ``meta``: shapes only)."""
    torch.manual_seed(0)
    tok = b.corpus.tokenizer
    with torch.device(device or b.device):
        return build_causal_lm(b.model_cfg, b.vocab, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)


def make_datamodule(b: Bench, seq_len: int, micro_batch: int, total_steps: int) -> PackedMixtureDataModule:
    """A fresh datamodule from sequence 0: every side and round reads the same batches in the same order."""
    return PackedMixtureDataModule(b.corpus, {DOMAIN: 1.0}, seq_len, micro_batch, micro_batch,
                                   token_budget=seq_len * micro_batch * total_steps, seed=0, val_windows_per_domain=1,
                                   num_workers=b.num_workers, document_masking=b.document_masking)


def free_memory(b: Bench) -> int:
    """Drop what the previous side left and restart the peak count; returns the bytes still allocated, which
    the next side's peak leaves out (on CPU: 0, no per-side peak)."""
    gc.collect()
    if not b.cuda:
        return 0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def _peak(b: Bench, baseline: int) -> int | None:
    return torch.cuda.max_memory_allocated() - baseline if b.cuda else None


# -------------------------------------------------------------------------------------------------- plain side

def plain_side(b: Bench, seq_len: int, micro_batch: int) -> Side:
    """The hand-written loop, timed over ``b.steps`` steps after ``b.warmup`` untimed ones."""
    baseline = free_memory(b)
    total = b.warmup + b.steps
    model = make_model(b).train()
    attn = model.config._attn_implementation
    optimizer = torch.optim.AdamW(model.parameters(), lr=OPT["lr"], betas=tuple(OPT["betas"]), eps=OPT["eps"],
                                  weight_decay=OPT["weight_decay"], fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LRSchedule("cosine", total, 0))
    forward = torch.compile(model) if b.plain_compile else model
    batches = iter(make_datamodule(b, seq_len, micro_batch, total).train_dataloader())

    def step() -> torch.Tensor:
        batch = next(batches)
        input_ids = batch["input_ids"].to(b.device, non_blocking=True)
        labels = batch["labels"].to(b.device, non_blocking=True)
        # document masking: the same kernel inputs infir builds (not what is measured: the training step is)
        inputs = {"input_ids": input_ids} if "segment_ids" not in batch else \
            packed_model_inputs(input_ids, batch["segment_ids"].to(b.device, non_blocking=True), None, attn)
        with torch.autocast(b.device, dtype=torch.bfloat16, enabled=b.bf16):
            logits = forward(**inputs, use_cache=False).logits.view(*input_ids.shape, -1)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())  # labels are already shifted
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["grad_clip"], foreach=True)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    first_loss = float(step())
    for _ in range(b.warmup - 1):
        step()
    start, graphs = b.clock()
    for i in range(b.steps):
        loss = step()
        if (i + 1) % b.log_every == 0:
            loss.item()  # the researcher prints the loss now and then
    end, graphs_end = b.clock()
    return Side(b.steps * micro_batch * seq_len / (end - start), _peak(b, baseline), first_loss, graphs_end - graphs)


# -------------------------------------------------------------------------------------------------- infir side

class _StepTimer(L.Callback):
    """Wall time from the end of the warm-up steps to the end of the last step (GPU: synchronised at both)."""

    def __init__(self, b: Bench) -> None:
        self.b = b
        self.start = (0.0, 0)
        self.elapsed = 0.0
        self.compiles = 0
        self.first_loss = float("nan")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if batch_idx == 0:
            self.first_loss = float(outputs["loss"])
        if batch_idx == self.b.warmup - 1:
            self.start = self.b.clock()
        elif batch_idx == trainer.max_steps - 1:
            end, graphs = self.b.clock()
            self.elapsed, self.compiles = end - self.start[0], graphs - self.start[1]


def infir_side(b: Bench, seq_len: int, micro_batch: int, speed: dict[str, Any] | None = None,
               warmup: int | None = None, steps: int | None = None) -> Side:
    """``CausalLMModule`` + ``PackedMixtureDataModule`` under ``trainer.fit``, as ``train.py`` builds them
    (validation and checkpointing off: they are not training steps)."""
    baseline = free_memory(b)
    run = dataclasses.replace(b, warmup=warmup or b.warmup, steps=steps or b.steps)
    total = run.warmup + run.steps
    datamodule = make_datamodule(run, seq_len, micro_batch, total)
    model = make_model(run)
    tokens_per_step = micro_batch * seq_len
    module = CausalLMModule(model, OPT, LRSchedule("cosine", total, 0), datamodule.domains, tokens_per_step,
                            speed=speed or run.speed)
    monitor = ThroughputMonitor(tokens_per_step, training_flops_per_token(model, seq_len), run.peak_flops, 1,
                                log_every_n_steps=run.log_every)
    timer = _StepTimer(run)
    trainer = L.Trainer(accelerator="gpu" if run.cuda else "cpu", devices=1, precision=run.precision,
                        max_steps=datamodule.max_steps, max_epochs=1, logger=CSVLogger(run.log_dir, name="csv"),
                        callbacks=[monitor, timer], log_every_n_steps=run.log_every, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, use_distributed_sampler=False)
    trainer.fit(module, datamodule=datamodule)
    return Side(run.steps * tokens_per_step / timer.elapsed, _peak(run, baseline), timer.first_loss, timer.compiles)


# ----------------------------------------------------------------------------------------- max micro-batch

def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def find_max_micro_batch(b: Bench, seq_len: int, checkpointing: bool, cap: int
                         ) -> tuple[int, Side | None, bool]:
    """Largest power-of-two micro-batch whose infir step runs (2 steps each), its measurement (the second
    step's tokens/s: compilation included in the first), and whether ``cap`` rather than memory stopped it."""
    speed = {**b.speed, "activation_checkpointing": checkpointing}
    best, best_side, micro_batch = 0, None, 1
    while micro_batch <= cap:
        try:
            side = infir_side(b, seq_len, micro_batch, speed=speed, warmup=1, steps=1)
        except (torch.OutOfMemoryError, RuntimeError) as error:
            if not _is_oom(error):
                raise
            side = None
        free_memory(b)  # after the except block: the traceback (and the tensors its frames hold) is gone
        if side is None:
            return best, best_side, False
        best, best_side, micro_batch = micro_batch, side, micro_batch * 2
    return best, best_side, True


# ------------------------------------------------------------------------------------------------- printing

def _gib(peak: int | None) -> str:
    return "n/a (CPU)" if peak is None else f"{peak / 2**30:.1f} GiB"


def _mem(side: Side) -> str:
    return "" if side.peak_bytes is None else f" (peak {_gib(side.peak_bytes)})"


def _mfu(tokens_per_s: float, seq_len: int, b: Bench, flops_per_token: dict[int, float]) -> str:
    return f"{tokens_per_s * flops_per_token[seq_len] / b.peak_flops:.1%}" if b.peak_flops > 0 else "n/a"


def print_table(rows: list[Row], b: Bench, flops_per_token: dict[int, float]) -> None:
    header = ["seq", "micro", "plain tok/s", "infir tok/s", "infir/plain", "plain MFU", "infir MFU",
              "plain peak mem", "infir peak mem"]
    lines = []
    for row in rows:
        p = statistics.median(s.tokens_per_s for s in row.plain_runs)
        o = statistics.median(s.tokens_per_s for s in row.infir_runs)
        peaks = [max(s.peak_bytes for s in side) if b.cuda else None for side in (row.plain_runs, row.infir_runs)]
        lines.append([str(row.seq_len), str(row.micro_batch), f"{p:,.0f}", f"{o:,.0f}", f"{o / p:.3f}",
                      _mfu(p, row.seq_len, b, flops_per_token), _mfu(o, row.seq_len, b, flops_per_token),
                      _gib(peaks[0]), _gib(peaks[1])])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *lines]:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths)))


def reproduce_command(args: argparse.Namespace, micro: dict[int, int]) -> str:
    """The run's options with every device-dependent default written out."""
    parts = ["python", "benchmarks/gpu_train.py", "--model", args.model, "--seq-lens", *map(str, args.seq_lens),
             "--micro-batch", *(f"{s}:{micro[s]}" for s in args.seq_lens), "--vocab", str(args.vocab),
             "--steps", str(args.steps), "--warmup", str(args.warmup), "--rounds", str(args.rounds),
             "--compile", args.compile, "--loss", args.loss, "--loss-chunk-tokens", str(args.loss_chunk_tokens),
             "--attn", args.attn, "--precision", args.precision, "--num-workers", str(args.num_workers),
             "--activation-checkpointing" if args.activation_checkpointing else "--no-activation-checkpointing",
             "--plain-compile" if args.plain_compile else "--no-plain-compile"]
    if args.document_masking:
        parts.append("--document-masking")
    if args.peak_flops is not None:
        parts += ["--peak-flops", str(args.peak_flops)]
    if args.find_max_micro_batch:
        parts += ["--find-max-micro-batch", "--max-micro-batch", str(args.max_micro_batch)]
    return shlex.join(parts)


# ------------------------------------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="conf/model/<name>.yaml (GPU: llama3_2_1b, CPU: nano)")
    parser.add_argument("--seq-lens", type=int, nargs="+", help="GPU: 2048 4096, CPU: 128 256")
    parser.add_argument("--micro-batch", nargs="+", default=[],
                        help="N for every seq len, or SEQ:N pairs (GPU default: 16k tokens, CPU: 8)")
    parser.add_argument("--vocab", type=int, help="model vocab (GPU: 128256, the Llama-3 tokenizer's; CPU: 8192)")
    parser.add_argument("--steps", type=int, help="timed steps per side and round (GPU: 20, CPU: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--rounds", type=int, help="rounds of plain then infir (GPU: 3, CPU: 2)")
    parser.add_argument("--compile", choices=COMPILE_MODES, help="infir's model.compile (GPU: regional, CPU: eager)")
    parser.add_argument("--loss", choices=LOSSES, help="infir's model.loss (GPU: chunked, CPU: plain)")
    parser.add_argument("--loss-chunk-tokens", type=int, help="model.loss_chunk_tokens (default: the model config's)")
    parser.add_argument("--activation-checkpointing", action=argparse.BooleanOptionalAction, default=False,
                        help="infir's model.activation_checkpointing (every decoder layer)")
    parser.add_argument("--plain-compile", action=argparse.BooleanOptionalAction,
                        help="torch.compile the plain side's whole model (GPU: on, CPU: off)")
    parser.add_argument("--attn", default="auto", choices=["auto", "sdpa", "flash_attention_2", "eager"],
                        help="model.attn_implementation for both sides (auto: flash-attn on CUDA if installed)")
    parser.add_argument("--precision", default="auto", help="auto: bf16-mixed on GPU, the CPU's best on CPU")
    parser.add_argument("--document-masking", action="store_true",
                        help="batches carry segment_ids; both sides attend within documents only")
    parser.add_argument("--num-workers", type=int, help="data loader workers (GPU: 4, CPU: 0)")
    parser.add_argument("--peak-flops", help="peak FLOP/s per device for MFU, or 'measure' (default: datasheet "
                        "on known GPUs, else infir's cached CPU measurement)")
    parser.add_argument("--find-max-micro-batch", action="store_true",
                        help="instead of timing: per seq len, with and without activation checkpointing, double "
                        "the micro-batch from 1 until out of memory (2 infir steps each)")
    parser.add_argument("--max-micro-batch", type=int, help="stop doubling here (GPU: 1024, CPU: 64)")
    args = parser.parse_args()
    defaults = GPU_DEFAULTS if torch.cuda.is_available() else CPU_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        parser.error("--warmup, --steps and --rounds must be >= 1")
    return args


def micro_batches(args: argparse.Namespace) -> dict[int, int]:
    """``--micro-batch`` as {seq len: micro-batch}, the device default for seq lens it does not name."""
    cuda = torch.cuda.is_available()
    micro = {s: max(1, GPU_MICRO_TOKENS // s) if cuda else CPU_MICRO_BATCH for s in args.seq_lens}
    for item in args.micro_batch:
        if ":" in item:
            seq, n = item.split(":", 1)
            micro[int(seq)] = int(n)
        else:
            micro = {s: int(item) for s in args.seq_lens}
    return micro


def main() -> None:
    args = parse_args()
    micro = micro_batches(args)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    precision = resolve_precision(args.precision, device)
    if precision not in ("bf16-mixed", "32-true"):
        raise SystemExit(f"precision {precision}: this benchmark's plain side runs bf16-mixed or 32-true only")
    args.precision = precision
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # per-fit banners, 2 x rounds x seq lens
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*Checkpointing is disabled.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")

    model_cfg = load_model_cfg(args.model)
    model_cfg.attn_implementation = args.attn
    if args.loss_chunk_tokens is None:
        args.loss_chunk_tokens = int(model_cfg.get("loss_chunk_tokens", 4096))
    speed = {"compile": args.compile, "activation_checkpointing": args.activation_checkpointing,
             "loss": args.loss, "loss_chunk_tokens": args.loss_chunk_tokens}
    peak, peak_source = peak_flops_per_device(args.peak_flops, precision, os.environ.get("INFIR_CACHE", REPO / "cache"))
    window_tokens = max(micro[s] * s for s in args.seq_lens) * (args.warmup + args.steps)

    with tempfile.TemporaryDirectory(prefix="gpu_train_") as tmp:
        corpus = synthetic_corpus(Path(tmp), args.vocab, train_tokens=max(2 * window_tokens, 1 << 20),
                                  val_tokens=2 * max(args.seq_lens) + 3000)
        b = Bench(device, precision, model_cfg, args.vocab, speed, corpus, args.warmup, args.steps,
                  args.document_masking, args.plain_compile, args.num_workers, args.log_every, peak, Path(tmp) / "logs")
        name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
        probe = make_model(b, "meta")
        params = sum(p.numel() for p in probe.parameters())
        flops_per_token = {s: training_flops_per_token(probe, s) for s in args.seq_lens}
        print(f"infir {infir.__version__} | device: {name} | torch {torch.__version__} | precision {precision} | "
              f"attn {resolve_attn_implementation(args.attn)}")
        print(f"model: {args.model}, {params / 1e6:.1f}M parameters, vocab {probe.config.vocab_size}")
        print(f"infir speed: {speed} | plain: torch.compile {'on' if args.plain_compile else 'off'}"
              f"{' | document masking' if args.document_masking else ''}")
        print(f"peak: {peak:.3g} FLOP/s ({peak_source})\n", flush=True)
        del probe

        if args.find_max_micro_batch:
            print("largest micro-batch (powers of two) whose infir training step fits:")
            for seq_len in args.seq_lens:
                for checkpointing in (False, True):
                    best, side, capped = find_max_micro_batch(b, seq_len, checkpointing, args.max_micro_batch)
                    note = f" (stopped at --max-micro-batch {args.max_micro_batch})" if capped else ""
                    measured = "" if side is None else \
                        f"   peak {_gib(side.peak_bytes)}, {side.tokens_per_s:,.0f} tok/s (1 step, indicative)"
                    print(f"  seq {seq_len:>6}  activation checkpointing {'on ' if checkpointing else 'off'}: "
                          f"micro-batch {best}{note}{measured}", flush=True)
            print(f"\nreproduce: {reproduce_command(args, micro)}")
            return

        rows = []
        for seq_len in args.seq_lens:
            row = Row(seq_len, micro[seq_len])
            for r in range(args.rounds):
                row.plain_runs.append(plain_side(b, seq_len, row.micro_batch))
                row.infir_runs.append(infir_side(b, seq_len, row.micro_batch))
                p, o = row.plain_runs[-1], row.infir_runs[-1]
                print(f"seq {seq_len} x micro-batch {row.micro_batch}, round {r + 1}: "
                      f"plain {p.tokens_per_s:10,.0f} tok/s{_mem(p)}   infir {o.tokens_per_s:10,.0f} tok/s{_mem(o)}   "
                      f"step-1 loss {p.first_loss:.4f} / {o.first_loss:.4f}"
                      + (f"   [graphs compiled in timed steps: plain {p.timed_compiles}, infir {o.timed_compiles}]"
                         if p.timed_compiles or o.timed_compiles else ""), flush=True)
            rows.append(row)
            free_memory(b)

    print(f"\nmedian of {args.rounds} rounds, {args.steps} timed steps each after {args.warmup} warm-up; "
          f"MFU = tok/s x training FLOPs/token / {peak:.3g} FLOP/s")
    print_table(rows, b, flops_per_token)
    print(f"\nreproduce: {reproduce_command(args, micro)}")


if __name__ == "__main__":
    main()
