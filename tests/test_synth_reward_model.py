"""The reward-model reward on a tiny random Llama reward model saved to disk: it keeps the candidate an
independent one-at-a-time scoring ranks best, its floor rejects, and batching, padding side and a config
without ``pad_token_id`` do not change a score."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import functools  # noqa: E402
import pickle  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification  # noqa: E402

from infir.data.documents import Document  # noqa: E402
from infir.models.chat_template import ensure_chat_template  # noqa: E402
from infir.models.tokenizer import load_tokenizer, train_bpe  # noqa: E402
from infir.synth.rewards import best_candidate  # noqa: E402
from infir.synth.rewards.reward_model import RewardModelReward  # noqa: E402

CORPUS = ["Question: Tom has 3 apples and buys 4 more. How many apples?\nAnswer: 3 + 4 = 7.\n#### 7\n",
          "The quick brown fox jumps over the lazy dog. 12 + 30 = 42. Think step by step.\n"] * 30
SYSTEM = "You are a helpful assistant."
DOCS = [
    Document("m1", "Tom has 3 apples and buys 4 more. How many apples?", "seed", "math",
             {"candidates": ["3 + 4 = 7. The answer is 7.", "The answer is 12.", "7",
                             "Tom has 3 apples; 3 + 4 = 7 apples in all. #### 7"]}),
    Document("m2", "What is 12 + 30? Think step by step.", "seed", "math",
             {"candidates": ["12 + 30 = 42.", "42", "The quick brown fox.", "", "12 + 30 = 43, so 43."]}),
    Document("r1", "The fox jumps over what?", "seed", "reasoning",
             {"candidates": ["The lazy dog.", "Over the lazy dog, as the sentence says.", "apples"]}),
    Document("c1", "Write a quick sentence.", "seed", "code",
             {"candidates": ["The quick brown fox jumps over the lazy dog.", "Question: answer", "  "]}),
]


def _save_model(out: Path, tokenizer, pad_token_id: int | None) -> Path:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         initializer_range=0.3, num_labels=1, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=pad_token_id)
    LlamaForSequenceClassification(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm-tok")
    train_bpe(CORPUS, 320, 2, out)
    return ensure_chat_template(load_tokenizer(out))


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory, tokenizer) -> Path:
    """A reward model whose config has a pad id distinct from EOS (Skywork-style: a dedicated [PAD])."""
    return _save_model(tmp_path_factory.mktemp("rm"), tokenizer, tokenizer.pad_token_id)


@pytest.fixture(scope="module")
def rm_dir_no_pad(tmp_path_factory, tokenizer) -> Path:
    """A reward model whose config has no pad id (pools the last token), with a template ending in EOS."""
    return _save_model(tmp_path_factory.mktemp("rm-no-pad"), tokenizer, None)


@functools.cache
def _saved(path: Path) -> tuple:
    return (AutoTokenizer.from_pretrained(str(path), local_files_only=True),
            LlamaForSequenceClassification.from_pretrained(str(path), local_files_only=True).eval())


def reference_scores(path: Path, doc: Document, system: str | None = None) -> list[float | None]:
    """Each (instruction, candidate) scored alone, unpadded, by the saved model (None: empty reply)."""
    tokenizer, model = _saved(path)
    scores: list[float | None] = []
    for candidate in doc.metadata["candidates"]:
        if not candidate.strip():
            scores.append(None)
            continue
        messages = [{"role": "user", "content": doc.text}, {"role": "assistant", "content": candidate}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            scores.append(model(input_ids=ids).logits[0, 0].item())
    return scores


def _argmax(scores: list[float | None]) -> int:
    return max((i for i, s in enumerate(scores) if s is not None), key=lambda i: scores[i])


def test_keeps_the_candidate_an_unpadded_one_at_a_time_scoring_ranks_best(rm_dir: Path) -> None:
    reward = RewardModelReward(str(rm_dir), batch_size=3, system_prompt=SYSTEM, device="cpu")
    verdicts = reward.judge(DOCS)
    assert [len(v) for v in verdicts] == [len(d.metadata["candidates"]) for d in DOCS]
    for doc, row in zip(DOCS, verdicts):
        expected = reference_scores(rm_dir, doc, SYSTEM)
        scored = sorted(s for s in expected if s is not None)
        assert scored[-1] - scored[-2] > 1e-3, "the tiny model must separate the top two for argmax to mean much"
        for verdict, score in zip(row, expected):
            if score is None:
                assert (verdict.accepted, verdict.reason) == (False, "empty_reply")
            else:
                assert verdict.accepted and verdict.score == pytest.approx(score, abs=1e-4)
        assert best_candidate(row) == _argmax(expected)
    assert reward.stats["empty_reply"] == 2 and reward.stats["scored"] == 13


def test_the_floor_rejects_candidates_below_it(rm_dir: Path) -> None:
    scores = reference_scores(rm_dir, DOCS[0])
    low, high = sorted(scores)[1:3]
    floor = (low + high) / 2
    reward = RewardModelReward(str(rm_dir), floor=floor, device="cpu")
    row = reward.judge([DOCS[0]])[0]
    assert [v.accepted for v in row] == [s >= floor for s in scores]
    assert all(v.reason == "below_floor" for v in row if not v.accepted)
    assert best_candidate(row) == _argmax(scores)
    everything_below = RewardModelReward(str(rm_dir), floor=max(scores) + 1.0, device="cpu")
    assert best_candidate(everything_below.judge([DOCS[0]])[0]) is None


@pytest.mark.parametrize("model", ["rm_dir", "rm_dir_no_pad"])
def test_batch_size_and_padding_side_do_not_change_a_score(model: str, request) -> None:
    path = request.getfixturevalue(model)
    runs = {(bs, side): RewardModelReward(str(path), batch_size=bs, padding_side=side, device="cpu").judge(DOCS)
            for bs, side in [(1, "right"), (4, "right"), (4, "left"), (16, "right")]}
    one = [[v.score for v in row] for row in runs[(1, "right")]]
    for key, verdicts in runs.items():
        assert [[v.score for v in row] for row in verdicts] == [pytest.approx(s, abs=1e-4) for s in one], key
    # no pad id in the config: the model pools the true last token (the template's final EOS), as unpadded
    for doc, row in zip(DOCS, one):
        assert row == [pytest.approx(s if s is not None else float("-inf"), abs=1e-4)
                       for s in reference_scores(path, doc)]


def test_applies_to_honours_domains(rm_dir: Path) -> None:
    reasoning = RewardModelReward(str(rm_dir), domains=["math", "reasoning"])
    assert [reasoning.applies_to(d) for d in DOCS] == [True, True, True, False]
    assert all(RewardModelReward(str(rm_dir)).applies_to(d) for d in DOCS)


def test_pickles_before_and_after_use_and_the_fingerprint_names_the_model(rm_dir: Path) -> None:
    reward = RewardModelReward(str(rm_dir), floor=0.5, device="cpu")
    copy = pickle.loads(pickle.dumps(reward))
    first = copy.judge(DOCS[:1])
    again = pickle.loads(pickle.dumps(copy))  # a used one drops its model and reloads it
    assert [v.score for v in again.judge(DOCS[:1])[0]] == pytest.approx([v.score for v in first[0]], abs=1e-6)
    fingerprint = reward.fingerprint()
    assert fingerprint["model"]["path"] == str(rm_dir.resolve())
    assert "config.json" in fingerprint["model"]["files"] and "model.safetensors" in fingerprint["model"]["files"]
    assert fingerprint == copy.fingerprint()
    assert RewardModelReward(str(rm_dir), floor=0.6).fingerprint() != fingerprint
    assert RewardModelReward(str(rm_dir), floor=0.5, batch_size=2).fingerprint() == fingerprint


def test_a_missing_model_path_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-reward-model"
    with pytest.raises(FileNotFoundError, match="no-such-reward-model.*does not exist"):
        RewardModelReward(str(missing))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        RewardModelReward(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no-such-org/no-such-rm"):  # a hub id, offline and not cached
        RewardModelReward("no-such-org/no-such-rm").judge(DOCS[:1])


def test_one_bos_whether_the_template_writes_it_or_the_tokenizer_adds_it(rm_dir: Path, tmp_path: Path) -> None:
    from shutil import copytree

    from tokenizers import processors

    reward = RewardModelReward(str(rm_dir), max_length=12, device="cpu")
    tokenizer = reward._load()[1]
    bos = tokenizer.bos_token_id
    full = RewardModelReward(str(rm_dir)).encode("Q", "A")
    assert full[:1] != [bos] and 12 < len(full)  # our tokenizer adds no BOS and our template writes none
    assert reward.encode("Q", "A") == full[:12] and reward.stats["truncated"] == 1  # cut on the right
    template_bos = copytree(rm_dir, tmp_path / "template-bos")
    tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template  # Llama-3 style: the template writes BOS
    tokenizer.save_pretrained(str(template_bos))
    tokenizer_bos = copytree(rm_dir, tmp_path / "tokenizer-bos")
    tokenizer = AutoTokenizer.from_pretrained(str(rm_dir), local_files_only=True)  # the template writes no BOS...
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(  # ...but the tokenizer adds it
        single=f"{tokenizer.bos_token} $A", special_tokens=[(tokenizer.bos_token, bos)])
    tokenizer.save_pretrained(str(tokenizer_bos))
    both = copytree(template_bos, tmp_path / "both-bos")
    tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    tokenizer.save_pretrained(str(both))
    for path in (template_bos, tokenizer_bos, both):
        ids = RewardModelReward(str(path), device="cpu").encode("Q", "A")
        assert ids[0] == bos and bos not in ids[1:] and ids[1:] == full, path.name
