"""SFT data: chat template, assistant-only labels, packing without cross-sample attention, epochs, embedded sets."""

from __future__ import annotations

import ast
import copy
import random

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from infir.data.sft import (IGNORE_INDEX, ConversationTooLong, SFTEpochs, collate,
                            encode_conversation, encode_conversations, normalise_conversation,
                            pack)
from infir.data.sources import sft_embedded
from infir.models.packed_attention import PAD_SEGMENT, block_causal_mask, flatten_for_varlen
from infir.models.chat_template import ASSISTANT_HEADER, CHAT_TEMPLATE, ensure_chat_template
from infir.models.tokenizer import load_tokenizer, prefix_token_id, train_bpe

CORPUS = [
    "The quick brown fox jumps over the lazy dog. You are a helpful assistant. Think step by step.",
    "def add(a, b):\n    return a + b\n\nclass Counter:\n    def __init__(self):\n        self.count = 0\n",
    "Question: What is 2 + 3?\nAnswer: 2 + 3 = 5\n#### 5\nThe final answer is $\\boxed{5}$.",
] * 20

CHAT = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is 2 + 3?\nThink step by step."},
        {"role": "assistant", "content": "2 + 3 = 5\n#### 5"},
        {"role": "user", "content": "Now write add."},
        {"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"}]
SHAREGPT = {"conversations": [{"from": {"user": "human", "assistant": "gpt"}.get(m["role"], m["role"]),
                               "value": m["content"]} for m in CHAT]}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_bpe(CORPUS, 400, 2, out)
    return ensure_chat_template(load_tokenizer(out))


def tiny_llama(vocab_size: int, attn: str = "sdpa") -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.2, use_cache=False)
    config._attn_implementation = attn
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_llama(len(tokenizer))


def chats(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Conversations of varied length (some multi-turn) for packing."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        messages = [{"role": "user", "content": f"What is {a} + {b}?" + " Think step by step." * rng.randint(0, 2)},
                    {"role": "assistant", "content": f"{a} + {b} = {a + b}\n#### {a + b}"}]
        if i % 3 == 0:
            messages += [{"role": "user", "content": "Double it."},
                         {"role": "assistant", "content": f"2 × {a + b} = {2 * (a + b)}"}]
        out.append(messages)
    return out


# ----------------------------------------------------------------------------- (e) chat template

def test_chat_template_round_trips_and_prompts_the_assistant(tokenizer, tmp_path):
    text = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert text.count(tokenizer.eos_token) == len(CHAT) and text.endswith(tokenizer.eos_token)
    assert not text.startswith(tokenizer.bos_token)
    prompt = tokenizer.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(tokenizer.eos_token + ASSISTANT_HEADER)
    # headers are text, not new tokens: the vocabulary is unchanged and EOS stays one special token
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.eos_token_id) == len(CHAT) and max(ids) < len(tokenizer)

    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert reloaded.chat_template == CHAT_TEMPLATE
    assert reloaded.apply_chat_template(CHAT, tokenize=False) == text
    assert reloaded.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True) == prompt
    with pytest.raises(Exception, match="roles"):
        reloaded.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)

    other = copy.deepcopy(tokenizer)
    other.chat_template = "{{ messages[0]['content'] }}"
    assert ensure_chat_template(other).chat_template == "{{ messages[0]['content'] }}"  # an existing one is kept


# --------------------------------------------------------------------------- (a) loss masking

def test_labels_are_exactly_the_assistant_tokens(tokenizer):
    input_ids, labels = encode_conversation(tokenizer, CHAT, max_len=1024)
    # Reference: transformers' own {% generation %} tracking on the whole rendered chat.
    reference = tokenizer.apply_chat_template(CHAT, return_dict=True, return_assistant_tokens_mask=True)
    full = [prefix_token_id(tokenizer), *reference["input_ids"]]
    mask = [0, *reference["assistant_masks"]]
    assert full[0] == tokenizer.eos_token_id  # our BPE adds no BOS: sequences start with EOS, as pre-training
    assert input_ids == full[:-1] and len(labels) == len(input_ids)
    assert labels == [full[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(full) - 1)]
    trained = [label for label in labels if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "".join(m["content"] + tokenizer.eos_token
                                                for m in CHAT if m["role"] == "assistant")


def test_foreign_template_without_generation_tags_is_masked_by_prefix_rendering(tokenizer):
    """A Llama-3-style template (renders BOS, no {% generation %}): one start token, assistant labels only."""
    other = copy.deepcopy(tokenizer)
    other.chat_template = (
        "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' "
        "+ m['content'] + eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
    input_ids, labels = encode_conversation(other, CHAT, max_len=1024)
    assert input_ids[0] == prefix_token_id(other) and other.bos_token_id not in input_ids
    assert other.decode([t for t in labels if t != IGNORE_INDEX]) == "".join(
        m["content"] + other.eos_token for m in CHAT if m["role"] == "assistant")
    prompt = other.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)[len(other.bos_token):]
    prompt_ids = [prefix_token_id(other), *other(prompt, add_special_tokens=False)["input_ids"]]
    assert input_ids[:len(prompt_ids)] == prompt_ids  # what the model sees at inference, token for token


def test_only_assistant_positions_carry_the_loss(tokenizer, model):
    input_ids, labels = encode_conversation(tokenizer, CHAT, max_len=1024)
    labels_t = torch.tensor(labels)
    logits = model(input_ids=torch.tensor([input_ids])).logits[0].detach().requires_grad_(True)
    loss = F.cross_entropy(logits, labels_t, ignore_index=IGNORE_INDEX)
    loss.backward()
    prompt = labels_t == IGNORE_INDEX
    assert prompt.any() and (~prompt).any()
    assert logits.grad[prompt].abs().max() == 0  # prompt positions get no gradient at all
    assert (logits.grad[~prompt].abs().amax(dim=1) > 0).all()

    with torch.no_grad():
        perturbed = logits.clone()
        perturbed[prompt] += 10 * torch.randn_like(perturbed[prompt])
        assert F.cross_entropy(perturbed, labels_t, ignore_index=IGNORE_INDEX) == loss  # prompt ignored
        first_assistant = int((~prompt).nonzero()[0])
        perturbed = logits.clone()
        perturbed[first_assistant, labels[first_assistant]] += 5.0
        assert F.cross_entropy(perturbed, labels_t, ignore_index=IGNORE_INDEX) < loss  # assistant tokens count


def test_long_conversations_are_cut_at_turn_boundaries_or_dropped(tokenizer):
    full_ids, _ = encode_conversation(tokenizer, CHAT, max_len=10_000)
    first_ids, first_labels = encode_conversation(tokenizer, CHAT[:3], max_len=10_000)
    cut_ids, cut_labels = encode_conversation(tokenizer, CHAT, max_len=len(full_ids) - 1)
    assert (cut_ids, cut_labels) == (first_ids, first_labels)  # second exchange dropped, first kept whole
    with pytest.raises(ConversationTooLong):
        encode_conversation(tokenizer, CHAT, max_len=len(first_ids) - 1)
    encoded = encode_conversations(tokenizer, [{"messages": CHAT}] * 2 + [{"messages": CHAT[:3]}, {"bad": 1}],
                                   max_len=len(first_ids))
    assert len(encoded.samples) == 3 and encoded.truncated == 2
    assert encoded.skipped == {"no conversation": 1}
    with pytest.raises(ValueError, match="no usable conversation.*too long"):
        encode_conversations(tokenizer, [{"messages": CHAT}], max_len=5)


# ------------------------------------------------------------------------------- (d) formats

def test_sharegpt_and_messages_encode_identically(tokenizer):
    assert normalise_conversation(SHAREGPT) == CHAT
    assert normalise_conversation({"messages": SHAREGPT["conversations"]}) == CHAT  # from/value under messages
    assert (encode_conversation(tokenizer, normalise_conversation(SHAREGPT), 1024)
            == encode_conversation(tokenizer, normalise_conversation({"messages": CHAT}), 1024))


@pytest.mark.parametrize("record, problem", [
    ({"text": "hi"}, "no conversation"),
    ({"messages": []}, "empty conversation"),
    ({"messages": [{"role": "user"}]}, "malformed turn"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "unknown role"),
    ({"conversations": [{"from": "bot", "value": "x"}]}, "unknown role"),
    ({"conversations": "hi"}, "empty conversation"),
    ({"messages": ["hi"]}, "malformed turn"),
    ({"messages": [{"role": "user", "content": ["x"]}]}, "non-text content"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"},
                   {"role": "assistant", "content": "ok"}]}, "misplaced system turn"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}, "empty assistant"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "ok"}]},
     "assistant before user"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant turn"),
    ("not a dict", "not a mapping"),
])
def test_malformed_records_name_the_problem(record, problem):
    with pytest.raises(ValueError, match=problem):
        normalise_conversation(record)


# ------------------------------------------------------------- (b) packing and the 4D mask

def packed_logits(model, batch, **kwargs):
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], **kwargs).logits


def test_packed_samples_do_not_attend_to_each_other(tokenizer, model):
    samples = [encode_conversation(tokenizer, c, 256) for c in chats(7)]
    packs = pack(samples, seq_len=max(len(s[0]) for s in samples) * 3, pad_id=tokenizer.pad_token_id)
    multi = [p for p in packs if len(p.samples) >= 2]
    assert multi and any(PAD_SEGMENT in p.segment_ids for p in packs)
    batch = collate(packs)
    batch["attention_mask"] = block_causal_mask(batch["segment_ids"])
    assert batch["attention_mask"].shape == (len(packs), 1, len(packs[0].input_ids), len(packs[0].input_ids))
    assert batch["attention_mask"].dtype == torch.bool
    logits = packed_logits(model, batch, attention_mask=batch["attention_mask"])
    assert torch.isfinite(logits).all()  # padding rows too
    with torch.no_grad():
        for row, p in enumerate(packs):
            start = 0
            for i in p.samples:
                ids, labels = samples[i]
                alone = model(input_ids=torch.tensor([ids])).logits[0]
                assert p.position_ids[start:start + len(ids)] == list(range(len(ids)))
                assert p.labels[start:start + len(ids)] == labels
                torch.testing.assert_close(logits[row, start:start + len(ids)], alone, atol=1e-5, rtol=0)
                start += len(ids)

    # Changing one sample's tokens leaves every other sample of its pack untouched.
    target = multi[0]
    row = packs.index(target)
    changed = batch["input_ids"].clone()
    first = torch.tensor(target.segment_ids) == 0
    changed[row, first] = torch.randint(3, len(tokenizer), (int(first.sum()),))
    after = packed_logits(model, {**batch, "input_ids": changed}, attention_mask=batch["attention_mask"])
    others = torch.tensor(target.segment_ids) > 0
    torch.testing.assert_close(after[row, others], logits[row, others], atol=1e-6, rtol=0)
    assert not torch.allclose(after[row, first], logits[row, first])

    # The other accepted forms: additive float for eager; position_ids alone (what flash-attention uses).
    real = torch.tensor([p.segment_ids for p in packs]) != PAD_SEGMENT
    eager = tiny_llama(len(tokenizer), "eager")
    additive = block_causal_mask(torch.tensor([p.segment_ids for p in packs]), dtype=torch.float32)
    torch.testing.assert_close(packed_logits(eager, batch, attention_mask=additive)[real], logits[real],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(packed_logits(model, batch)[real], logits[real], atol=1e-5, rtol=0)
    flat = flatten_for_varlen(batch)
    assert flat["input_ids"].shape == (1, batch["input_ids"].numel()) and "attention_mask" not in flat
    torch.testing.assert_close(packed_logits(model, flat)[0][real.flatten()], logits[real], atol=1e-5, rtol=0)


def test_block_causal_mask_pattern():
    mask = block_causal_mask(torch.tensor([0, 0, 1, 1, 1, PAD_SEGMENT]))[0, 0].int().tolist()
    assert mask == [[1, 0, 0, 0, 0, 0],
                    [1, 1, 0, 0, 0, 0],
                    [0, 0, 1, 0, 0, 0],
                    [0, 0, 1, 1, 0, 0],
                    [0, 0, 1, 1, 1, 0],
                    [0, 0, 0, 0, 0, 1]]  # padding: only itself
    additive = block_causal_mask(torch.tensor([[0, 1]]), dtype=torch.float16)[0, 0]
    assert additive[0, 0] == 0 and additive[1, 0] == torch.finfo(torch.float16).min


def test_packing_is_best_fit_and_rejects_oversize_samples():
    samples = [([1] * n, [IGNORE_INDEX] * n) for n in (6, 5, 4, 3, 2, 2)]
    packs = pack(samples, seq_len=8)
    assert [p.samples for p in packs] == [(0, 4), (1, 3), (2, 5)]
    assert all(len(p.input_ids) == 8 for p in packs)
    assert packs[2].segment_ids == [0, 0, 0, 0, 1, 1, PAD_SEGMENT, PAD_SEGMENT]
    assert packs[2].position_ids == [0, 1, 2, 3, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="encode with max_len"):
        pack([([1] * 9, [1] * 9)], seq_len=8)


# ------------------------------------------------------------------------ (c) epoch shuffling

def synthetic_samples(n: int) -> list:
    rng = random.Random(1)
    return [([i] * k, [i] * k) for i, k in enumerate(rng.randint(3, 30) for _ in range(n))]


def epoch_samples(data: SFTEpochs, epoch: int) -> list[int]:
    return [i for index in range(data.steps_per_epoch) for p in data.batch_packs(epoch, index) for i in p.samples]


def test_epochs_are_seeded_shuffles_that_cover_every_sample_once():
    samples = synthetic_samples(200)
    data = SFTEpochs(samples, seq_len=64, seed=3, batch_size=4, epochs=3)
    again = SFTEpochs(samples, seq_len=64, seed=3, batch_size=4, epochs=3)
    assert data.steps_per_epoch == -(-len(data.packs) // 4) and data.total_steps() == 3 * data.steps_per_epoch
    assert len(data) == data.total_steps()  # Lightning's one epoch is the whole run, not our first epoch
    orders = [epoch_samples(data, e) for e in range(3)]
    for e, order in enumerate(orders):
        assert sorted(order) == list(range(len(samples)))  # every sample exactly once per epoch
        assert epoch_samples(again, e) == order  # same (seed, epoch): same order
    assert orders[0] != orders[1] != orders[2]
    assert epoch_samples(SFTEpochs(samples, seq_len=64, seed=4, batch_size=4), 0) != orders[0]

    # Iteration walks (epoch, index) in order and resumes at any step with the exact next batch.
    batches = list(data)
    assert len(batches) == data.total_steps()
    step = data.steps_per_epoch + 2
    resumed = SFTEpochs(samples, seq_len=64, seed=3, batch_size=4, epochs=3)
    resumed.resume(*resumed.position(step))
    assert resumed.position(step) == (1, 2)
    rest = list(resumed)
    assert len(rest) == len(batches) - step
    for a, b in zip(rest, batches[step:]):
        assert all(torch.equal(a[k], b[k]) for k in ("input_ids", "labels", "position_ids", "segment_ids"))

    # Two ranks split each epoch's batches without overlap.
    ranks = [SFTEpochs(samples, seq_len=64, seed=3, batch_size=4, rank=r, world_size=2) for r in (0, 1)]
    seen = [epoch_samples(r, 0) for r in ranks]
    assert not set(seen[0]) & set(seen[1]) and ranks[0].steps_per_epoch == data.steps_per_epoch // 2


# --------------------------------------------------------------------------- (f) embedded data

def test_embedded_sft_keeps_heldout_questions_out_of_train():
    from infir.data.sources.procedural import normalise_question
    from infir.eval import embedded

    procedural = {s: sft_embedded.procedural_conversations(s) for s in ("train", "validation", "heldout_eval")}
    questions = {s: {normalise_question(r["messages"][1]["content"].rsplit("\n", 1)[0]) for r in records}
                 for s, records in procedural.items()}
    assert len(procedural["train"]) == 4000 and len(questions["heldout_eval"]) == 500
    assert not questions["train"] & questions["heldout_eval"] and not questions["train"] & questions["validation"]
    # the held-out split is exactly the eval harness's held-out set
    assert questions["heldout_eval"] == {normalise_question(r["question"]) for r in embedded.procedural()}
    assert all(r["messages"][2]["content"].rsplit("\n", 1)[1].startswith("#### ") for r in procedural["train"])

    champ = {s: sft_embedded.champ_conversations(s) for s in ("train", "heldout_eval")}
    train_problems = {r["messages"][1]["content"] for r in champ["train"]}
    heldout = embedded.champ()
    assert len(champ["train"]) > 100 and {r["id"] for r in champ["heldout_eval"]} == {r["id"] for r in heldout}
    assert not any(r["problem"] in p for r in heldout for p in train_problems)
    assert all("\\boxed{" in r["messages"][2]["content"] for r in champ["train"])


def test_embedded_sft_prompts_match_the_instruct_eval():
    from infir.eval.suite import SYSTEM_PROMPT
    from infir.eval.tasks import GSM8K, INSTRUCT, CompetitionMath

    record = sft_embedded.procedural_conversations("validation")[0]
    question = record["messages"][1]["content"].rsplit("\n", 1)[0]
    assert record["messages"][0]["content"] == SYSTEM_PROMPT
    assert record["messages"][1]["content"] == GSM8K([], mode=INSTRUCT).instruction({"question": question})
    champ = sft_embedded.champ_conversations("validation")[0]
    problem = champ["messages"][1]["content"].rsplit("\n", 1)[0]
    assert champ["messages"][1]["content"] == CompetitionMath([], mode=INSTRUCT).instruction({"problem": problem})


def test_embedded_code_tasks_are_valid_python_and_split_by_file(tokenizer):
    splits = {s: sft_embedded.code_conversations(s, max_files=120) for s in ("train", "validation", "heldout_eval")}
    assert splits["train"] and splits["validation"] + splits["heldout_eval"]
    ids = {s: {r["id"] for r in records} for s, records in splits.items()}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["heldout_eval"]
    assert not ids["validation"] & ids["heldout_eval"]
    for records in splits.values():
        for r in records:
            reply = r["messages"][2]["content"]
            assert reply.startswith("```python\n") and reply.endswith("\n```")
            tree = ast.parse(reply[len("```python\n"):-len("\n```")])
            assert isinstance(tree.body[0], ast.FunctionDef) and f"`{tree.body[0].name}(" in r["messages"][1]["content"]
    assert sft_embedded.code_conversations("train", max_files=120, max_items=5) == splits["train"][:5]

    # the whole embedded train set goes through the SFT pipeline
    records = sft_embedded.sft_conversations("train", {"procedural": {"n_train": 20}, "champ": {},
                                                       "code": {"max_files": 120, "max_items": 10}})
    assert {r["source"] for r in records} == {"procedural", "champ", "code"}
    encoded = encode_conversations(tokenizer, records, max_len=4096)
    assert encoded.trained_tokens > 0 and len(encoded.samples) + sum(encoded.skipped.values()) == len(records)
    assert len(SFTEpochs(encoded.samples, seq_len=4096, seed=0)) > 0
