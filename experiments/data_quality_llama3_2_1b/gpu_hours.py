"""GPU-hour estimate of `experiment=data_quality_llama3_2_1b`: model FLOPs at an assumed MFU, not a measurement.

    python experiments/data_quality_llama3_2_1b/gpu_hours.py                 # MFU 0.40 on H100-class bf16 peaks
    python experiments/data_quality_llama3_2_1b/gpu_hours.py --mfu 0.3 --gpu A100 --seeds 3

The model is built on the meta device from the composed experiment (Llama-3.2-1B shape, the Llama-3.2 vocabulary
of 128,256), its training FLOPs per token come from the same formula benchmarks/gpu_train.py reports MFU with
(infir.models.causal_lm.training_flops_per_token: 6 N + 12 L d T), and the peak from the same datasheet table
(infir.training.throughput.GPU_PEAK_BF16). tokens/s per GPU = MFU x peak / FLOPs per token. Validation, evaluation
and curation time are left out (curation runs on CPUs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # importing infir (below) first runs its torchvision op guard

LLAMA3_VOCAB = 128_256  # the Llama-3.2 tokenizer's size (PAPER.md §3); tokenizer.path= supplies it at run time
RECIPES = 5             # the sweep's curation recipes


def estimate(mfu: float, gpu: str, seeds: int, overrides: list[str]) -> dict[str, float]:
    import torch
    from hydra import compose, initialize_config_dir

    from infir.hydra_support import register_resolvers
    from infir.models.causal_lm import build_causal_lm, count_parameters, training_flops_per_token
    from infir.training.throughput import GPU_PEAK_BF16

    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=data_quality_llama3_2_1b", *overrides])
    model_cfg = {**cfg.model, "attn_implementation": "sdpa"}
    with torch.device("meta"):
        model = build_causal_lm(model_cfg, LLAMA3_VOCAB, 128000, 128001, None)
    seq_len, tokens = int(cfg.phase.seq_len), int(cfg.data_mix.token_budget)
    steps = tokens // (seq_len * int(cfg.phase.global_batch_size))
    tokens = steps * seq_len * int(cfg.phase.global_batch_size)  # what the run trains on (whole steps)
    flops_per_token = training_flops_per_token(model, seq_len)
    tokens_per_s = mfu * GPU_PEAK_BF16[gpu] / flops_per_token
    run_hours = tokens / tokens_per_s / 3600
    return {"parameters": count_parameters(model)["total"], "flops_per_token": flops_per_token, "steps": steps,
            "tokens": tokens, "tokens_per_s_per_gpu": tokens_per_s, "gpu_hours_per_run": run_hours,
            "gpu_hours_sweep": run_hours * RECIPES * seeds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mfu", type=float, default=0.40, help="assumed model FLOPs utilisation (default 0.40)")
    parser.add_argument("--gpu", default="H100", help="GPU_PEAK_BF16 key: H100, H200, H800, A100, ...")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per recipe")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data_mix.token_budget=...")
    args = parser.parse_args()
    e = estimate(args.mfu, args.gpu, args.seeds, args.overrides)
    print(f"parameters {e['parameters'] / 1e9:.3f} B | training FLOPs/token {e['flops_per_token'] / 1e9:.2f} G | "
          f"{e['steps']} steps = {e['tokens'] / 1e9:.2f} B tokens per run")
    print(f"assumed MFU {args.mfu:.0%} of {args.gpu} bf16 peak -> {e['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU "
          "(an estimate, not a measurement)")
    print(f"{e['gpu_hours_per_run']:,.0f} GPU-hours per run; {RECIPES} recipes x {args.seeds} seed(s) = "
          f"{e['gpu_hours_sweep']:,.0f} GPU-hours")


if __name__ == "__main__":
    main()
