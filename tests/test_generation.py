"""Evaluation generation and likelihood scoring on a tiny random Llama and a tiny byte-level BPE."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from infir.eval.generation import GenerationConfig, _Detokenizer, generate
from infir.eval.likelihood import continuation_logprobs, document_nll
from infir.models.tokenizer import decode_text, encode_with_prefix, load_tokenizer, prefix_token_id, train_bpe

CORPUS = [
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.",
    "def add(a, b):\n    return a + b\n\nclass Counter:\n    def __init__(self):\n        self.count = 0\n",
    "Question: What is 2 + 3?\nAnswer: 5\nQuestion: What is the capital of France?\nAnswer: Paris\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i, 'is even')\n    else:\n        print(i)\n",
] * 20

PROMPTS = ["def add(a, b):\n", "", "Question: What is the capital of France?\nAnswer:", "x",
           "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with",
           "for i in range(10):", "class Counter:\n    def __init__(self):\n        self.count = 0\n    def"]
NEW = 12


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_bpe(CORPUS, 384, 2, out)
    return load_tokenizer(out)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    # initializer_range 0.3: peaky logits, so greedy argmax is never a float-noise coin flip
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         initializer_range=0.3, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, use_cache=False)
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config).eval()


def hf_greedy_ids(model, tokenizer, prompt_ids: list[int], new_tokens: int = NEW) -> list[int]:
    """HF ``generate`` on one unpadded prompt: the reference; EOS and what follows dropped."""
    ids = torch.tensor([prompt_ids])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                         do_sample=False, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)[0, len(prompt_ids):].tolist()
    return out[:out.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in out else out


@pytest.fixture(scope="module")
def reference(model, tokenizer) -> list[list[int]]:
    return [hf_greedy_ids(model, tokenizer, ids) for ids in encode_with_prefix(tokenizer, PROMPTS)]


class ForwardLog:
    """Records (batch rows, is a decode step) of every model forward."""

    def __init__(self, model):
        self.calls: list[tuple[int, bool]] = []

        def record(module, args, kwargs):
            cache = kwargs.get("past_key_values")
            decode = cache is not None and cache.get_seq_length() > 0
            self.calls.append((kwargs["input_ids"].shape[0], decode))

        self._handle = model.register_forward_pre_hook(record, with_kwargs=True)

    def decode_rows(self) -> list[int]:
        return [rows for rows, decode in self.calls if decode]

    def close(self) -> None:
        self._handle.remove()


def test_greedy_batched_matches_hf_generate_one_at_a_time(model, tokenizer, reference):
    expected = [decode_text(tokenizer, ids) for ids in reference]
    assert len(set(expected)) == len(expected)  # distinct outputs, so order mistakes cannot hide
    assert sum(len(ids) == NEW for ids in reference) >= 4  # most rows run the whole budget
    for batch_size in (1, 3, 16):  # several batches with left padding, and one batch holding everything
        out = generate(model, tokenizer, PROMPTS, GenerationConfig(max_new_tokens=NEW, batch_size=batch_size))
        assert out == [[text] for text in expected], batch_size
    reordered = generate(model, tokenizer, PROMPTS[::-1], GenerationConfig(max_new_tokens=NEW))
    assert reordered == [[text] for text in expected[::-1]]


def test_left_truncation_keeps_the_prefix_and_the_end_of_the_prompt(model, tokenizer):
    prompt = PROMPTS[4]
    ids = encode_with_prefix(tokenizer, [prompt])[0]
    assert len(ids) > 8
    out = generate(model, tokenizer, [prompt, "x"], GenerationConfig(max_new_tokens=NEW, max_prompt_tokens=8))
    assert out[0] == [decode_text(tokenizer, hf_greedy_ids(model, tokenizer, [ids[0], *ids[-7:]]))]


def _ascii_piece(tokenizer, token: int) -> str:
    piece = decode_text(tokenizer, [token])
    return piece if piece and piece.isascii() and piece.isprintable() else ""


def test_stop_string_spanning_two_tokens_cuts_the_output_and_ends_the_row(model, tokenizer, reference):
    # a stop string made of the last character of one generated token and the first of the next
    row, k = next((i, k) for i in range(len(reference)) for k in range(2, len(reference[i]) - 3)
                  if _ascii_piece(tokenizer, reference[i][k]) and _ascii_piece(tokenizer, reference[i][k + 1]))
    ids = reference[row]
    full = decode_text(tokenizer, ids)
    stop = _ascii_piece(tokenizer, ids[k])[-1] + _ascii_piece(tokenizer, ids[k + 1])[0]
    cut = full.find(stop)
    assert 0 <= cut < len(full) - len(stop)
    assert cut + 1 in {len(decode_text(tokenizer, ids[:j])) for j in range(1, len(ids))}  # it spans a boundary
    log = ForwardLog(model)
    try:
        out = generate(model, tokenizer, [PROMPTS[row]], GenerationConfig(max_new_tokens=NEW, stop=("@@never", stop)))
    finally:
        log.close()
    assert out == [[full[:cut]]]
    assert len(log.decode_rows()) < len(ids) - 1  # the row stopped decoding once the stop string was complete

    first_piece = decode_text(tokenizer, ids[:1])
    assert generate(model, tokenizer, [PROMPTS[row]], GenerationConfig(max_new_tokens=NEW, stop=(first_piece,)))[0] \
        == [full[:full.find(first_piece)]]


def test_eos_ends_a_row_and_the_others_continue_in_a_smaller_batch(model, tokenizer, reference):
    longest = max(range(len(PROMPTS)), key=lambda i: len(encode_with_prefix(tokenizer, [PROMPTS[i]])[0]))
    log = ForwardLog(model)

    def force_eos(module, args, output):  # decode step 2: the first row (the longest prompt) emits EOS
        if log.calls[-1][1] and len(log.decode_rows()) == 2:
            output[0, -1, :] = -1e4
            output[0, -1, tokenizer.eos_token_id] = 1e4
        return output

    handle = model.get_output_embeddings().register_forward_hook(force_eos)
    try:
        out = generate(model, tokenizer, PROMPTS, GenerationConfig(max_new_tokens=NEW, batch_size=len(PROMPTS)))
    finally:
        handle.remove()
        log.close()
    for i, ids in enumerate(reference):
        assert out[i] == [decode_text(tokenizer, ids[:2] if i == longest else ids)]
    rows = log.decode_rows()
    assert rows[:2] == [len(PROMPTS)] * 2 and rows[2] == len(PROMPTS) - 1  # the finished row left the batch


def test_sampling_gives_n_reproducible_samples_per_prompt(model, tokenizer, reference):
    config = GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.95, num_samples=3,
                              batch_size=4, seed=7)
    first = generate(model, tokenizer, PROMPTS, config)
    assert [len(samples) for samples in first] == [3] * len(PROMPTS)
    assert generate(model, tokenizer, PROMPTS, config) == first
    assert any(len(set(samples)) > 1 for samples in first)
    assert generate(model, tokenizer, PROMPTS, replace(config, seed=8)) != first
    # a nucleus that only holds the top token is greedy decoding
    nucleus_of_one = GenerationConfig(max_new_tokens=NEW, do_sample=True, top_p=1e-6, num_samples=2)
    assert generate(model, tokenizer, PROMPTS, nucleus_of_one) == \
        [[decode_text(tokenizer, ids)] * 2 for ids in reference]
    greedy_twice = generate(model, tokenizer, PROMPTS[:2], GenerationConfig(max_new_tokens=NEW, num_samples=2))
    assert greedy_twice == [[decode_text(tokenizer, ids)] * 2 for ids in reference[:2]]


def test_eval_mode_during_scoring_and_previous_mode_restored(model, tokenizer):
    modes: list[bool] = []  # model.training at every forward, generation and likelihood alike
    log = model.get_input_embeddings().register_forward_pre_hook(lambda module, args: modes.append(model.training))
    try:
        for mode in (True, False):
            model.train(mode)
            generate(model, tokenizer, PROMPTS[:2], GenerationConfig(max_new_tokens=3))
            continuation_logprobs(model, tokenizer, [("a", " b")])
            document_nll(model, tokenizer, ["abc"], max_length=16)
            assert model.training is mode
    finally:
        log.remove()
        model.eval()
    assert len(modes) > 6 and not any(modes)
    assert generate(model, tokenizer, [], GenerationConfig()) == []


@pytest.mark.parametrize("field, kwargs", [
    ("max_new_tokens", {"max_new_tokens": 0}),
    ("temperature", {"do_sample": True, "temperature": 0.0}),
    ("top_p", {"top_p": 0.0}),
    ("top_p", {"top_p": 1.5}),
    ("num_samples", {"num_samples": 0}),
    ("batch_size", {"batch_size": 0}),
    ("stop", {"stop": "\n"}),
    ("stop", {"stop": ("",)}),
])
def test_bad_generation_config_names_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        GenerationConfig(**kwargs)


def direct_continuation(model, tokenizer, context: str, continuation: str) -> tuple[float, int]:
    """Unbatched: one forward of prefix + whole string, summing the continuation tokens' log-probs."""
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    ids = [prefix_token_id(tokenizer), *whole]
    with torch.no_grad():
        logprobs = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
    positions = range(1 + n_context, len(ids))
    return sum(logprobs[p - 1, ids[p]].item() for p in positions), len(positions)


def test_continuation_logprobs_match_a_direct_computation(model, tokenizer):
    pairs = [("The quick brown fox", " jumps over the lazy dog."), ("Question: What is 2 + 3?\nAnswer:", " 5"),
             ("def add(a, b):", "\n    return a + b"), ("x", "y"), ("", "Paris"), ("abc", "")]
    got = continuation_logprobs(model, tokenizer, pairs, batch_size=2)
    for (context, continuation), (logprob, n) in zip(pairs, got):
        want, want_n = direct_continuation(model, tokenizer, context, continuation)
        assert n == want_n and logprob == pytest.approx(want, abs=1e-4)
    assert got[-1] == (0.0, 0) and got[0][1] > 3
    unbatched = continuation_logprobs(model, tokenizer, pairs, batch_size=1)
    assert [n for _, n in unbatched] == [n for _, n in got]
    assert [lp for lp, _ in unbatched] == pytest.approx([lp for lp, _ in got], abs=1e-4)
    # trailing whitespace of the context belongs to the continuation
    (spaced, spaced_n), = continuation_logprobs(model, tokenizer, [("Answer: ", "Paris")])
    (moved, moved_n), = continuation_logprobs(model, tokenizer, [("Answer:", " Paris")])
    assert spaced_n == moved_n and spaced == pytest.approx(moved, abs=1e-6)


def test_multiple_choice_softmax_picks_the_best_scored_option(model, tokenizer):
    context = "Question: What is the capital of France?\nAnswer:"
    options = [" Paris", " 5", " the lazy dog", " range"]
    scores = [lp for lp, _ in continuation_logprobs(model, tokenizer, [(context, o) for o in options])]
    probs = torch.tensor(scores).softmax(-1)
    direct = [direct_continuation(model, tokenizer, context, o)[0] for o in options]
    assert probs.sum().item() == pytest.approx(1.0)
    assert int(probs.argmax()) == max(range(len(options)), key=direct.__getitem__)


def test_document_nll_matches_the_mean_cross_entropy_and_windows_cover_every_token(model, tokenizer):
    text = CORPUS[1] + CORPUS[2] + " héllo"
    ids = [prefix_token_id(tokenizer), *tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert len(ids) > 30
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()
    mean_ce = F.cross_entropy(logits, torch.tensor(ids[1:])).item()
    (total, n, n_bytes), = document_nll(model, tokenizer, [text], max_length=256)
    assert n == len(ids) - 1 and n_bytes == len(text.encode("utf-8")) == len(text) + 1
    assert total / n == pytest.approx(mean_ce, abs=1e-4)

    window = 7  # non-overlapping windows: each predicts its 7 tokens from inside the window
    windowed = 0.0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start:start + window + 1]
            chunk_logits = model(torch.tensor([chunk[:-1]])).logits[0].float()
            windowed += F.cross_entropy(chunk_logits, torch.tensor(chunk[1:]), reduction="sum").item()
    short = "Answer: 5"
    results = document_nll(model, tokenizer, [text, short, ""], max_length=window, batch_size=3)
    assert results[0][1] == n and results[0][0] == pytest.approx(windowed, abs=1e-3)
    assert results[0][0] != pytest.approx(total, abs=1e-2)  # windows did lose context
    assert results[1] == pytest.approx(document_nll(model, tokenizer, [short], max_length=window)[0], abs=1e-4)
    assert results[2] == (0.0, 0, 0)
    assert math.isfinite(results[1][0])
    with pytest.raises(ValueError, match="max_length"):
        document_nll(model, tokenizer, [text], max_length=0)


def test_incremental_detokenizer_never_splits_a_utf8_character(tokenizer):
    text = " naïve café – 😀 done"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    context = tokenizer("Answer:", add_special_tokens=False)["input_ids"]
    detok, seen = _Detokenizer(tokenizer, context), []
    for token in ids:
        detok.push([token])
        seen.append(detok.text)
        assert "\ufffd" not in detok.text and text.startswith(detok.text)
    detok.push([], final=True)
    assert detok.text == text and len(set(seen)) < len(seen)  # some tokens were partial characters, held back


def test_sequences_start_the_way_the_model_saw_documents_start(tokenizer):
    """Our BPE never adds BOS (pre-training packs ``doc EOS doc EOS``): EOS leads; a Llama-3-style
    tokenizer that prepends BOS itself gets BOS."""
    from tokenizers.processors import TemplateProcessing

    assert tokenizer("a")["input_ids"][0] != tokenizer.bos_token_id
    assert prefix_token_id(tokenizer) == tokenizer.eos_token_id
    assert encode_with_prefix(tokenizer, ["a"])[0][0] == tokenizer.eos_token_id
    bos_first = copy.deepcopy(tokenizer)
    bos = tokenizer.bos_token
    bos_first._tokenizer.post_processor = TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tokenizer.bos_token_id)])
    assert bos_first("a")["input_ids"][0] == tokenizer.bos_token_id
    assert prefix_token_id(bos_first) == tokenizer.bos_token_id
    assert encode_with_prefix(bos_first, ["a"])[0].count(tokenizer.bos_token_id) == 1  # never two BOS
