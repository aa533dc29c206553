"""Evaluation generation speed: our batched KV-cache decode loop vs HF ``model.generate`` batched the same way.

The fair peer is ``generate`` given the same batches: the same rows per batch, the same length-sorted
order (longest first), left padding with an attention mask, the same stop strings (``stop_strings`` +
``tokenizer``) and the same token budget; EOS ends a row on both sides. Both run in the same process,
interleaved round by round after a warm-up, and the script prints wall seconds and process CPU seconds
per prompt for each. HF ``generate`` one prompt at a time (no padding: the exact reference decode) is
run once as the identity check: our greedy outputs must equal its text, or the script fails. HF's
batched outputs are compared too and only reported: left padding moves its logits by float noise.

    python benchmarks/generation.py [--prompts 32] [--new-tokens 64] [--threads 2] [--rounds 3]

Where ours differs from batched ``generate``: rows leave the batch as soon as they end (EOS, a stop
string or the budget), so later steps decode fewer rows, and prompts are prefilled in groups of
similar length into one preallocated cache; ``generate`` keeps decoding finished rows (as padding)
until the last row of the batch ends.

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

Prints ``ours vs HF generate batched: <ratio>x wall, <ratio>x CPU`` and the one-at-a-time ratio.
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

from infir.eval.generation import GenerationConfig, generate  # noqa: E402
from infir.models.causal_lm import build_causal_lm, count_parameters  # noqa: E402
from infir.models.tokenizer import decode_text, encode_with_prefix, load_tokenizer, train_bpe  # noqa: E402


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


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """The text before the first stop string (what our loop returns; ``generate`` keeps the stop string)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def hf_batched(model, tokenizer, encoded: list[list[int]], new_tokens: int, batch_size: int,
               stops: tuple[str, ...]) -> list[str]:
    """The fair peer: HF ``generate`` over length-sorted, left-padded batches of ``batch_size`` with stop strings."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    outputs: list[str] = [""] * len(encoded)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, i in enumerate(batch):
            input_ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]):] = 1
        out = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,
                             use_cache=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             stop_strings=list(stops) or None, tokenizer=tokenizer if stops else None)
        for row, i in enumerate(batch):
            new = out[row, width:].tolist()
            if tokenizer.eos_token_id in new:
                new = new[:new.index(tokenizer.eos_token_id)]
            outputs[i] = cut_at_stop(decode_text(tokenizer, new), stops)
    return outputs


def hf_one_at_a_time(model, tokenizer, encoded: list[list[int]], new_tokens: int,
                     stops: tuple[str, ...]) -> tuple[list[str], list[list[int]]]:
    """The baseline: HF ``generate`` per prompt (no padding), greedy, KV cache, EOS stops; (texts, new ids)."""
    outputs, new_ids = [], []
    for ids in encoded:
        input_ids = torch.tensor([ids])
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                             max_new_tokens=new_tokens, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id, stop_strings=list(stops) or None,
                             tokenizer=tokenizer if stops else None)
        new = out[0, len(ids):].tolist()
        if tokenizer.eos_token_id in new:
            new = new[:new.index(tokenizer.eos_token_id)]
        new_ids.append(new)
        outputs.append(cut_at_stop(decode_text(tokenizer, new), stops))
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
    parser.add_argument("--batch-size", type=int, default=16, help="rows per batch, both sides (GenerationConfig's default)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (ours, HF batched)")
    parser.add_argument("--stop", nargs="*", default=["\nclass ", "\ndef ", "\n#", "\nif ", "\nprint("],
                        help="stop strings, both sides (default: lm-eval's HumanEval stops)")
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

    stops = tuple(args.stop)
    config = GenerationConfig(max_new_tokens=args.new_tokens, batch_size=args.batch_size, stop=stops)
    print(f"stop strings: {stops!r}")
    generate(model, tokenizer, prompts[:4], config)  # warm-up every path
    hf_batched(model, tokenizer, encoded[:4], args.new_tokens, args.batch_size, stops)

    times = {"ours": [0.0, 0.0], "hf": [0.0, 0.0]}  # [wall s, process CPU s], summed over rounds

    def timed(side: str, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        times[side][0] += time.perf_counter() - wall
        times[side][1] += time.process_time() - cpu
        return result

    for _ in range(args.rounds):  # interleaved: a load change on a shared machine hits both sides alike
        ours = timed("ours", lambda: [s[0] for s in generate(model, tokenizer, prompts, config)])
        batched = timed("hf", lambda: hf_batched(model, tokenizer, encoded, args.new_tokens, args.batch_size, stops))
    start = time.perf_counter()
    theirs, their_ids = hf_one_at_a_time(model, tokenizer, encoded, args.new_tokens, stops)
    single_s = time.perf_counter() - start

    same = sum(a == b for a, b in zip(ours, theirs))
    same_batched = sum(a == b for a, b in zip(batched, theirs))
    decisions = sum(min(len(ids) + 1, args.new_tokens) for ids in their_ids)
    print(f"greedy outputs identical to HF one-at-a-time: ours {same}/{len(prompts)}, HF batched "
          f"{same_batched}/{len(prompts)}; smallest top-1/top-2 logit gap over the {decisions} greedy decisions: "
          f"{min_greedy_margin(model, tokenizer, encoded, their_ids):.1e}; float noise, batched vs one-row logits: "
          f"{float_noise(model, encoded):.1e}")
    n = args.rounds * len(prompts)
    (ours_wall, ours_cpu), (hf_wall, hf_cpu) = times["ours"], times["hf"]
    print(f"per prompt: ours {ours_wall / n * 1e3:.1f} ms wall, {ours_cpu / n * 1e3:.1f} ms CPU; HF generate batched "
          f"{hf_wall / n * 1e3:.1f} ms wall, {hf_cpu / n * 1e3:.1f} ms CPU ({args.rounds} interleaved rounds)")
    print(f"ours vs HF generate batched: {hf_wall / ours_wall:.2f}x wall, {hf_cpu / ours_cpu:.2f}x CPU "
          f"({len(prompts)} prompts, batch {args.batch_size}, {args.new_tokens} new tokens)")
    print(f"ours vs HF generate one at a time: {single_s / (ours_wall / args.rounds):.1f}x wall")
    if same != len(prompts):
        raise SystemExit("FAIL: batched greedy outputs differ from HF generate")

if __name__ == "__main__":
    main()
