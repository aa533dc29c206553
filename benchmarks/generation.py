"""Evaluation generation speed: our batched KV-cache decode loop vs HF ``model.generate`` one prompt at a time.

Same model, same tokenizer, same prompts, greedy, no stop strings, the same token budget
(EOS ends a row on both sides), in the same process after a warm-up of both. The greedy
outputs must be identical text, or the script fails.

    python benchmarks/generation.py [--prompts 32] [--new-tokens 64] [--threads 2]

Model: the repo's ``tiny`` Llama shape widened to ~13M parameters (hidden 384, 6 layers,
8192-token byte-level BPE trained on this Python's stdlib sources), randomly initialised
(fast, no training run) with ``initializer_range`` 0.1 instead of 0.02. At 0.02 the random
model's greedy output repeats one token forever, a weak identity check; 0.1 gives varied
output with a median top-1/top-2 logit gap of ~0.4. A larger range does not help: sharper
attention amplifies float noise faster than it widens the gaps (0.2: noise x4, gaps x2). The
script prints both sides of that bet: the smallest top-1/top-2 gap over every greedy decision,
and the float noise between batched (left-padded) and one-row logits, which must stay well
below it for the greedy comparison to be decided by our code rather than by rounding.

Threads: ``torch.set_num_threads(--threads)``, default all cores, the same for both sides.
Ours decodes all 32 prompts in one batch by default (``--batch-size``; GenerationConfig's
default is 16).

Prints one line: ``batched vs HF one-at-a-time: <ratio>x (ours <s> s, HF <s> s, <n> prompts, <k> new tokens)``.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import infir  # noqa: E402,F401  (torchvision op guard)
import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from infir.eval.generation import GenerationConfig, decode_text, encode_with_prefix, generate  # noqa: E402
from infir.models.causal_lm import build_causal_lm, count_parameters  # noqa: E402
from infir.models.tokenizer import load_tokenizer, train_bpe  # noqa: E402


def stdlib_sources() -> list[str]:
    """Local text that needs no download: this interpreter's standard library."""
    files = sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py")))
    texts = [Path(f).read_text(encoding="utf-8", errors="replace") for f in files]
    return [t for t in texts if len(t) > 2000]


def make_prompts(texts: list[str], n: int, seed: int) -> list[str]:
    """``n`` code snippets of varied length (~40 to ~1,600 characters), cut at line starts."""
    rng = random.Random(seed)
    prompts = []
    for i in range(n):
        text = texts[rng.randrange(len(texts))]
        length = int(40 * (40 ** (i / max(1, n - 1))))  # geometric spread of lengths
        start = text.rfind("\n", 0, rng.randrange(0, len(text) - length)) + 1
        prompts.append(text[start:start + length])
    rng.shuffle(prompts)
    return prompts


def hf_one_at_a_time(model, tokenizer, encoded: list[list[int]],
                     new_tokens: int) -> tuple[list[str], list[list[int]]]:
    """The baseline: HF ``generate`` per prompt (no padding), greedy, KV cache, EOS stops; (texts, new ids)."""
    outputs, new_ids = [], []
    for ids in encoded:
        input_ids = torch.tensor([ids])
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                             max_new_tokens=new_tokens, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        new = out[0, len(ids):].tolist()
        if tokenizer.eos_token_id in new:
            new = new[:new.index(tokenizer.eos_token_id)]
        new_ids.append(new)
        outputs.append(decode_text(tokenizer, new))
    return outputs, new_ids


@torch.inference_mode()
def float_noise(model, encoded: list[list[int]]) -> float:
    """Max |logit difference| at the last prompt token: all prompts in one left-padded batch vs each alone."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.zeros((len(encoded), width), dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for i, ids in enumerate(encoded):
        input_ids[i, width - len(ids):] = torch.tensor(ids)
        mask[i, width - len(ids):] = 1
    batched = model(input_ids=input_ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                    logits_to_keep=1).logits[:, -1]
    return max((model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1] - batched[i]).abs().max().item()
               for i, ids in enumerate(encoded))


@torch.inference_mode()
def min_greedy_margin(model, tokenizer, encoded: list[list[int]], generated: list[list[int]]) -> float:
    """Smallest top-1 minus top-2 logit over all greedy decisions (re-scored unbatched)."""
    margin = float("inf")
    for ids, new in zip(encoded, generated):
        full = ids + new
        logits = model(torch.tensor([full])).logits[0, len(ids) - 1:, :len(tokenizer)].float()
        top = logits.topk(2, dim=-1).values
        margin = min(margin, (top[:, 0] - top[:, 1]).min().item())
    return margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="rows per decode batch for ours")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--init-range", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    texts = stdlib_sources()
    with tempfile.TemporaryDirectory() as tmp:
        train_bpe(texts, args.vocab, 2, Path(tmp))
        tokenizer = load_tokenizer(tmp)
    cfg = OmegaConf.merge(OmegaConf.load(REPO / "conf" / "model" / "tiny.yaml"), {
        "hidden_size": args.hidden, "intermediate_size": args.hidden * 8 // 3, "num_hidden_layers": args.layers,
        "num_attention_heads": args.hidden // 64, "num_key_value_heads": 2, "initializer_range": args.init_range,
        "vocab_multiple": 1, "attn_implementation": "sdpa"})
    model = build_causal_lm(cfg, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                            tokenizer.pad_token_id).eval()
    params = count_parameters(model)
    prompts = make_prompts(texts, args.prompts, args.seed)
    encoded = encode_with_prefix(tokenizer, prompts)
    lengths = sorted(len(ids) for ids in encoded)
    print(f"model: {params['total'] / 1e6:.1f}M parameters ({params['non_embedding'] / 1e6:.1f}M non-embedding), "
          f"hidden {args.hidden}, {args.layers} layers, vocab {len(tokenizer)}, fp32, init range {args.init_range}")
    print(f"torch threads: {torch.get_num_threads()}; prompts: {len(prompts)}, {lengths[0]}-{lengths[-1]} tokens "
          f"(median {lengths[len(lengths) // 2]}); new tokens: {args.new_tokens}; our batch size: {args.batch_size}")

    config = GenerationConfig(max_new_tokens=args.new_tokens, batch_size=args.batch_size)
    generate(model, tokenizer, prompts[:4], config)  # warm-up both paths
    hf_one_at_a_time(model, tokenizer, encoded[:2], args.new_tokens)

    start = time.perf_counter()
    ours = [samples[0] for samples in generate(model, tokenizer, prompts, config)]
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs, their_ids = hf_one_at_a_time(model, tokenizer, encoded, args.new_tokens)
    hf_s = time.perf_counter() - start

    same = sum(a == b for a, b in zip(ours, theirs))
    decisions = sum(min(len(ids) + 1, args.new_tokens) for ids in their_ids)
    print(f"greedy outputs identical: {same}/{len(prompts)} prompts; smallest top-1/top-2 logit gap over the "
          f"{decisions} greedy decisions: {min_greedy_margin(model, tokenizer, encoded, their_ids):.1e}; "
          f"float noise, batched vs one-row logits: {float_noise(model, encoded):.1e}")
    print(f"batched vs HF one-at-a-time: {hf_s / ours_s:.1f}x (ours {ours_s:.2f} s, HF {hf_s:.2f} s, "
          f"{len(prompts)} prompts, {args.new_tokens} new tokens)")
    if same != len(prompts):
        raise SystemExit("FAIL: batched greedy outputs differ from HF generate")


if __name__ == "__main__":
    main()
