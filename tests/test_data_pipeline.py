"""Tokenizer caching, token shards with document boundaries, and the held-out guarantees."""

import numpy as np
import pytest

from infir.data.corpus import check_synthetic_policy, prepare_corpus
from infir.data.documents import HELDOUT_EVAL, TRAIN, Document
from infir.data.sources.champ import ChampSource
from infir.data.sources.procedural import ProceduralSource
from infir.data.sources.stdlib_code import StdlibCodeSource
from infir.data.token_shards import TokenStream, token_dtype, write_stream
from infir.models.tokenizer import trained_or_loaded_tokenizer

TEXTS = ["def add(a, b):\n    return a + b\n", "Solve 3x + 4 = 10. Subtract 4: 3x = 6.\n#### 2", "ünïcödé ∑ 😀"] * 50


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    tok, _ = trained_or_loaded_tokenizer(None, TEXTS, 300, 2, tmp_path_factory.mktemp("tok"))
    return tok


def test_tokenizer_is_cached_by_content_and_round_trips(tmp_path):
    tok_a, dir_a = trained_or_loaded_tokenizer(None, TEXTS, 300, 2, tmp_path)
    _, dir_again = trained_or_loaded_tokenizer(None, TEXTS, 300, 2, tmp_path)
    _, dir_other = trained_or_loaded_tokenizer(None, TEXTS + ["new text"], 300, 2, tmp_path)
    assert dir_a == dir_again and dir_a != dir_other
    for text in set(TEXTS):
        assert tok_a.decode(tok_a(text)["input_ids"]) == text  # byte-level: lossless, no <unk>
    with pytest.raises(FileNotFoundError, match="tokenizer.path"):
        trained_or_loaded_tokenizer(str(tmp_path / "missing"), [], 300, 2, tmp_path)


def test_split_digits_gives_every_digit_its_own_token_and_its_own_cache_entry(tmp_path):
    numbers = ["(420, 359) and (583, 802); 2025 + 17 = 2042"] * 80 + TEXTS
    merged, dir_merged = trained_or_loaded_tokenizer(None, numbers, 300, 2, tmp_path)
    split, dir_split = trained_or_loaded_tokenizer(None, numbers, 300, 2, tmp_path, split_digits=True)
    assert dir_merged != dir_split
    text = "(420, 359) = 2042"
    pieces = [split.decode([i]) for i in split(text)["input_ids"]]
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("4203592042")
    assert any(len(merged.decode([i]).strip()) > 1 and merged.decode([i]).strip().isdigit()
               for i in merged(text)["input_ids"])  # plain BPE merged the frequent digit runs
    assert split.decode(split(text)["input_ids"]) == text


def test_shards_keep_document_boundaries_and_tokens(tmp_path, tokenizer):
    texts = [f"document number {i} " * (1 + i % 7) for i in range(200)]
    info = write_stream(texts, tokenizer, tmp_path, shard_tokens=500)
    assert len(info["shards"]) > 1 and info["documents"] == 200
    restored = []
    for shard in info["shards"]:
        tokens = np.fromfile(tmp_path / f"{shard['name']}.bin", dtype=info["dtype"])
        starts = np.load(tmp_path / f"{shard['name']}.docs.npy")
        ends = list(starts[1:]) + [len(tokens)]
        for s, e in zip(starts, ends):
            assert tokens[e - 1] == tokenizer.eos_token_id  # every document ends with EOS
            restored.append(tokenizer.decode(tokens[s:e - 1].tolist()))
    assert restored == texts
    stream = TokenStream(tmp_path, seq_len=16)
    window = stream.window(stream.n_windows - 1)
    assert len(window) == 17
    with pytest.raises(IndexError):
        stream.window(stream.n_windows)


def test_token_dtype_by_vocab_size():
    assert token_dtype(8192) == np.uint16 and token_dtype(65536) == np.uint16
    assert token_dtype(128_256) == np.uint32


def test_heldout_problems_never_reach_training_streams(tmp_path):
    sources = {"champ": ChampSource(), "procedural": ProceduralSource(n_train=300, n_validation=40, n_heldout=60),
               "stdlib": StdlibCodeSource(max_files=30)}
    corpus = prepare_corpus(sources, {"math": 0.5, "code": 0.5},
                            {"path": None, "vocab_size": 512, "train_bytes": 200_000}, tmp_path,
                            allow_synthetic=True)
    heldout = [d for s in sources.values() for d in s.documents() if d.split == HELDOUT_EVAL]
    assert len(heldout) > 100
    train_stream = TokenStream(corpus.stream_dir("math", TRAIN), seq_len=64)
    tokens = np.concatenate([np.asarray(m) for m in train_stream._shards])
    train_text = corpus.tokenizer.decode(tokens.tolist())
    leaked = [d.id for d in heldout if d.text.split("\n")[0] in train_text]
    assert leaked == []
    # and the training stream really is the training documents (the check above can fail)
    train_docs = [d for s in sources.values() for d in s.documents() if d.split == TRAIN and d.domain == "math"]
    assert all(d.text.split("\n")[0] in train_text for d in train_docs[:20])


def test_champ_split_is_fixed_and_seeded():
    a, b = ChampSource(seed=0), ChampSource(seed=0)
    splits = [d.split for d in a.documents()]
    assert splits == [d.split for d in b.documents()]
    assert 0.2 < splits.count(HELDOUT_EVAL) / len(splits) < 0.4
    assert splits != [d.split for d in ChampSource(seed=1).documents()]


def test_synthetic_sources_in_pretraining_need_explicit_opt_in():
    docs = [Document("p/1", "x", "procedural", "math", {"synthetic": True, "split": TRAIN})]
    with pytest.raises(ValueError, match="allow_synthetic"):
        check_synthetic_policy(docs, allow_synthetic=False, phase="pretrain")
    check_synthetic_policy(docs, allow_synthetic=True, phase="pretrain")
    check_synthetic_policy(docs, allow_synthetic=False, phase="anneal")


def test_token_byte_lengths_add_up_to_the_text_bytes(tokenizer):
    """val/bpb divides NLL by these byte counts: they must be exact for any text."""
    from infir.models.tokenizer import token_byte_lengths

    lengths = token_byte_lengths(tokenizer, len(tokenizer))
    for text in set(TEXTS) | {"mixed ∑ text\n\twith tabs", ""}:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert lengths[ids].sum() == len(text.encode("utf-8"))
    assert lengths[tokenizer.eos_token_id] == 0


def test_token_shards_built_on_any_executor_equal_the_serial_ones(tmp_path, tokenizer):
    """Chunks tokenised as parallel tasks (2 local processes, a 2-CPU Ray instance) come back in order: every
    shard file, document index and stream.json is byte-identical to a serial build, cuts included."""
    from infir.data.execution import ExecutorSpec, LazyExecutor

    texts = [f"{t} variant {i} " + "word " * (i % 17) for i, t in enumerate(TEXTS * 6)]  # 900 documents
    serial = write_stream(texts, tokenizer, tmp_path / "serial", shard_tokens=2000)
    assert len(serial["shards"]) >= 5

    def files(d):
        return {p.name: p.read_bytes() for p in sorted(d.iterdir())}

    for kind in ("local", "ray"):
        with LazyExecutor(ExecutorSpec(kind, 2)) as executor:
            info = write_stream(texts, tokenizer, tmp_path / kind, shard_tokens=2000, executor=executor,
                                chunk_docs=64)
        assert info == serial
        assert files(tmp_path / kind) == files(tmp_path / "serial"), kind
