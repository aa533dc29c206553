"""`data_mix=paper` reads every source of the paper's table (PAPER.md §2) from local copies laid out like the
public datasets, with their own field names, and `experiment=data_quality_llama3_2_1b` composes the Figure 1
sweep at the Llama-3.2-1B shape over it. The stand-ins below are tiny, but each is in its dataset's real file
format and layout (parquet, zstd/gzip JSON lines, Common Crawl WET), so a wrong glob, format or field name in
conf/data_mix/paper.yaml reads no document and fails here."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import REPO
from infir.config import ConfigError, validate_config
from infir.data.doc_io import InputError, InputSpec, Rejections, read_documents
from infir.data.documents import TRAIN, VALIDATION
from infir.hydra_support import register_resolvers

register_resolvers()

# PAPER.md §2, appendix table: domain -> sources (our source keys)
PAPER_TABLE = {"web": {"common_crawl", "fineweb_edu", "dclm"},
               "math": {"infimm_webmath", "open_web_math", "mathcode_pile", "proof_pile_2", "finemath"},
               "code": {"the_stack_v2", "starcoder"},
               "knowledge": {"arxiv", "stackexchange", "pes2o"},
               "encyclopedia": {"wikipedia"},
               "instruction": {"flan", "infinity_instruct"}}
HUB_IDS = {"fineweb_edu": "HuggingFaceFW/fineweb-edu", "dclm": "mlfoundations/dclm-baseline-1.0",
           "infimm_webmath": "Infi-MM/InfiMM-WebMath-40B", "open_web_math": "open-web-math/open-web-math",
           "mathcode_pile": "MathGenie/MathCode-Pile", "proof_pile_2": "EleutherAI/proof-pile-2",
           "finemath": "HuggingFaceTB/finemath", "the_stack_v2": "bigcode/the-stack-v2",
           "starcoder": "bigcode/starcoderdata", "arxiv": "togethercomputer/RedPajama-Data-1T",
           "stackexchange": "togethercomputer/RedPajama-Data-1T", "pes2o": "allenai/peS2o",
           "wikipedia": "wikimedia/wikipedia", "flan": "Open-Orca/FLAN", "infinity_instruct": "BAAI/Infinity-Instruct",
           "common_crawl": None}


def _compose(*overrides: str, hydra_node: bool = False):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=hydra_node)


def _parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _jsonl(path: Path, rows: list[dict], compression: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    if compression == "gzip":
        data = gzip.compress(data)
    if compression == "zstd":
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(data)
        return
    path.write_bytes(data)


def _wet(path: Path, pages: list[tuple[str, str]]) -> None:
    """A WET file as Common Crawl writes them: one gzip member per WARC record, a warcinfo record first."""
    def record(headers: dict[str, str], body: bytes) -> bytes:
        head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": len(body)}.items())
        return gzip.compress(head.encode() + b"\r\n" + body + b"\r\n\r\n")

    info = b"Software-Info: ia-web-commons.1.1.10-SNAPSHOT\r\nExtracted-Date: Wed, 21 Feb 2024 00:10:55 GMT\r\n"
    members = [record({"WARC-Type": "warcinfo", "WARC-Date": "2024-02-21T00:10:55Z",
                       "WARC-Filename": path.name, "WARC-Record-ID": "<urn:uuid:00000000-info>",
                       "Content-Type": "application/warc-fields"}, info)]
    for i, (url, text) in enumerate(pages):
        members.append(record({"WARC-Type": "conversion", "WARC-Target-URI": url, "WARC-Date": "2024-02-20T22:13:48Z",
                               "WARC-Record-ID": f"<urn:uuid:0000000{i}-page>", "WARC-Refers-To": f"<urn:uuid:{i}>",
                               "WARC-Block-Digest": "sha1:AAAA", "WARC-Identified-Content-Language": "eng",
                               "Content-Type": "text/plain"}, text.encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(members))


def _texts(source: str, n: int = 4) -> list[str]:
    return [f"{source} document {i}: real-looking text about topic {i} that ends properly." for i in range(n)]


def make_stand_ins(root: Path) -> dict[str, list[str]]:
    """Each source's files under ``root`` in the public dataset's layout and fields; returns the texts each
    source must yield (joined the way the reader joins them)."""
    want = {}
    # --- web
    t = want["common_crawl"] = _texts("cc")
    _wet(root / "common-crawl/crawl-data/CC-MAIN-2024-10/segments/1707947473347.0/wet/"
         "CC-MAIN-20240220211055-20240221001055-00000.warc.wet.gz",
         [(f"http://site{i}.example/", x) for i, x in enumerate(t)])
    t = want["fineweb_edu"] = _texts("fineweb-edu")
    _parquet(root / "fineweb-edu/data/CC-MAIN-2024-10/train-00000-of-00020.parquet",
             [{"text": x, "id": f"<urn:uuid:fw{i}>", "dump": "CC-MAIN-2024-10", "url": f"https://edu{i}.example/",
               "file_path": "s3://commoncrawl/crawl-data/x.warc.gz", "language": "en", "language_score": 0.97,
               "token_count": 12, "score": 3.1, "int_score": 3} for i, x in enumerate(t)])
    (root / "fineweb-edu/README.md").write_text("# FineWeb-Edu\n")  # a snapshot's card is no document
    t = want["dclm"] = _texts("dclm", 6)
    for shard, part in (("local-shard_0_of_10", t[:3]), ("local-shard_1_of_10", t[3:])):  # the same file name twice
        _jsonl(root / f"dclm-baseline-1.0/global-shard_01_of_10/{shard}/shard_00000000_processed.jsonl.zstd",
               [{"text": x, "url": f"https://dclm{i}.example/", "metadata": {"WARC-Type": "response"},
                 "fasttext_openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train_prob": 0.2} for i, x in enumerate(part)],
               "zstd")
    # --- math
    pieces = [["Let x = 2.", None, "Then x^2 = 4."], ["Area of a circle:", None, None, "pi r^2."], ["Only text."]]
    want["infimm_webmath"] = ["\n\n".join(p for p in ps if p) for ps in pieces]
    _parquet(root / "InfiMM-WebMath-40B/part-00000-d02d03ca-9d67-4b41-ae48-a1ec4116ea42-c000.gz.parquet",
             [{"URL": f"https://math{i}.example/", "text_list": ps,
               "image_list": [None if p else f"https://img.example/{i}.png" for p in ps],
               "metadata": json.dumps({"ft_lang_label": "__label__en"})} for i, ps in enumerate(pieces)])
    t = want["open_web_math"] = _texts("owm")
    _parquet(root / "open-web-math/data/train-00000-of-00114-0f8b2b1e0c5f9d8a.parquet",
             [{"url": f"https://owm{i}.example/", "text": x, "date": "2023-01-01", "metadata": "{}"}
              for i, x in enumerate(t)])
    t = want["mathcode_pile"] = _texts("mathcode")
    _jsonl(root / "MathCode-Pile/jupyter-structured_filtered"
           / "decontaminated_package-filtered_train-00000-of-00006.jsonl", [{"text": x} for x in t])
    t = want["proof_pile_2"] = _texts("proofpile")
    _jsonl(root / "proof-pile-2/algebraic-stack/train/python0007.jsonl.zst", [{"text": x, "meta": {}} for x in t[:2]],
           "zstd")
    _jsonl(root / "proof-pile-2/arxiv/train/arXiv_000.jsonl.zst", [{"text": x, "meta": {}} for x in t[2:]], "zstd")
    _jsonl(root / "proof-pile-2/algebraic-stack/validation/agda-validation.jsonl.gz",  # not the train split
           [{"text": "a dev-set file", "meta": {}}], "gzip")
    t = want["finemath"] = _texts("finemath")
    _parquet(root / "finemath/finemath-3plus/train-00000-of-00128.parquet",
             [{"url": f"https://fm{i}.example/", "text": x, "token_count": 12, "score": 3.5, "int_score": 4}
              for i, x in enumerate(t)])
    _parquet(root / "finemath/finemath-4plus/train-00000-of-00064.parquet", [{"url": "u", "text": "another cut"}])
    # --- code
    code = [f"def f{i}(x):\n    return x + {i}\n" for i in range(4)]
    want["the_stack_v2"] = code
    _parquet(root / "the-stack-v2/data/Python/train-00000-of-00012.parquet",  # after the content download
             [{"blob_id": f"{i:040x}", "path": f"/pkg/f{i}.py", "repo_name": "someone/repo", "src_encoding": "UTF-8",
               "language": "Python", "length_bytes": len(c), "extension": "py", "content": c}
              for i, c in enumerate(code)])
    want["starcoder"] = code
    _parquet(root / "starcoderdata/python/train-00000-of-00059.parquet",
             [{"max_stars_repo_path": f"src/f{i}.py", "max_stars_repo_name": "someone/repo", "max_stars_count": 3,
               "id": str(i), "content": c} for i, c in enumerate(code)])
    # --- general knowledge
    t = want["arxiv"] = _texts("arxiv")
    _jsonl(root / "redpajama-1t/arxiv/arxiv_024de5df-1b7f-447c-8c3a-51407d8d6732.jsonl",
           [{"text": x, "meta": {"arxiv_id": f"2401.0000{i}"}} for i, x in enumerate(t)])
    t = want["stackexchange"] = _texts("stackexchange")
    _jsonl(root / "redpajama-1t/stackexchange/stackexchange.jsonl",
           [{"text": x, "meta": {"url": f"https://se.example/{i}", "question_score": "3"}} for i, x in enumerate(t)])
    t = want["pes2o"] = _texts("pes2o")
    _jsonl(root / "peS2o/data/v2/train-00000-of-00020.json.gz",
           [{"added": "2023-01-01", "created": "2020-01-01", "id": str(i), "source": "s2orc/train", "text": x,
             "version": "v2"} for i, x in enumerate(t)], "gzip")
    # --- encyclopedia
    t = want["wikipedia"] = _texts("wikipedia")
    _parquet(root / "wikipedia/20231101.en/train-00000-of-00041.parquet",
             [{"id": str(i), "url": f"https://en.wikipedia.org/wiki?curid={i}", "title": f"T{i}", "text": x}
              for i, x in enumerate(t)])
    # --- open instruction data
    pairs = [(f"Question {i}: what is {i} + 1?", f"{i + 1}") for i in range(4)]
    want["flan"] = [f"{q}\n\n{a}" for q, a in pairs]
    _parquet(root / "FLAN/cot_fsopt_data/part.0.parquet",
             [{"inputs": q, "targets": a, "_template_idx": 0, "_task_source": "CoT", "_task_name": "gsm8k",
               "_template_type": "fs_opt"} for q, a in pairs])
    want["infinity_instruct"] = [f"{q}\n\n{a}" for q, a in pairs]
    _parquet(root / "Infinity-Instruct/7M/train-00000-of-00008.parquet",
             [{"id": str(i), "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
               "label": "{}", "langdetect": "en", "source": "flan"} for i, (q, a) in enumerate(pairs)])
    return want


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("pretrain")
    return root, make_stand_ins(root)


def test_the_mix_lists_every_source_of_the_paper_table_with_its_hub_id():
    mix = _compose("data_mix=paper").data_mix
    assert {name: node.domain for name, node in mix.sources.items()} == \
        {name: domain for domain, names in PAPER_TABLE.items() for name in names}
    assert {name: node.hub_id for name, node in mix.sources.items()} == HUB_IDS
    assert set(mix.curate) == set(mix.sources)  # the paper curated all of its pre-training data
    assert set(mix.weights) == set(PAPER_TABLE) and set(mix.unknown_weights) == set(PAPER_TABLE)
    assert mix.sources.the_stack_v2.text_field == "content" and "softwareheritage" in mix.sources.the_stack_v2.download


def test_every_source_reads_its_stand_in_through_the_project_readers(stand_ins):
    root, want = stand_ins
    mix = _compose("data_mix=paper", f"data_mix.root={root}", "data_mix.validation_fraction=0.5").data_mix
    splits = set()
    for name, node in mix.sources.items():
        source = instantiate(node)
        docs = list(source.documents())
        assert sorted(d.text for d in docs) == sorted(want[name]), name
        assert {(d.source, d.domain) for d in docs} == {(name, node.domain)}, name
        assert len({d.id for d in docs}) == len(docs) and all(d.id.startswith(f"{name}/") for d in docs), name
        assert source.fingerprint() == instantiate(node).fingerprint()
        splits |= {d.split for d in docs}
    assert splits == {TRAIN, VALIDATION}
    cc = list(instantiate(mix.sources.common_crawl).documents())
    assert {d.metadata["url"] for d in cc} == {f"http://site{i}.example/" for i in range(4)}
    assert {d.split for d in cc} == {TRAIN}  # validation_fraction 0: raw crawl text is no validation text
    pes2o = next(iter(instantiate(mix.sources.pes2o).documents()))
    assert pes2o.metadata["record_source"] == "s2orc/train" and pes2o.id == "pes2o/0"


def test_a_wrong_field_name_or_glob_reads_nothing_and_says_which_source(stand_ins):
    root, _ = stand_ins
    for override, expected in [("data_mix.sources.wikipedia.text_field=body", "no column 'body'"),
                               ("data_mix.sources.dclm.glob=*/*.jsonl.zst", "matches glob")]:
        node = _compose("data_mix=paper", f"data_mix.root={root}", override).data_mix.sources
        node = node.wikipedia if "wikipedia" in override else node.dclm
        with pytest.raises(InputError, match=f"data_mix.sources.{node.name}.*{expected}"):
            list(instantiate(node).documents())


def test_the_stack_v2_hub_files_hold_no_code_and_the_error_says_where_it_is(tmp_path):
    _parquet(tmp_path / "the-stack-v2/data/Python/train-00000-of-00012.parquet",  # as downloaded from the hub
             [{"blob_id": "0" * 40, "path": "/a.py", "repo_name": "r", "src_encoding": "UTF-8", "language": "Python",
               "length_bytes": 10, "extension": "py"}])
    node = _compose("data_mix=paper", f"data_mix.root={tmp_path}").data_mix.sources.the_stack_v2
    with pytest.raises(InputError, match=r"the_stack_v2: no usable document.*no column 'content'.*softwareheritage"):
        list(instantiate(node).documents())


def test_a_missing_local_copy_names_the_source_and_how_to_fetch_it(tmp_path):
    node = _compose("data_mix=paper", f"data_mix.root={tmp_path}").data_mix.sources.fineweb_edu
    with pytest.raises(FileNotFoundError, match=r"data_mix.sources.fineweb_edu.path: no such file or directory."
                       r"*huggingface-cli download --repo-type dataset HuggingFaceFW/fineweb-edu"):
        list(instantiate(node).documents())


def test_hf_stream_reads_a_local_dataset_folder_and_never_a_hub_id_offline(stand_ins):
    root, want = stand_ins
    node = _compose("data_mix=paper", f"data_mix.root={root}", "data_mix.sources.wikipedia.format=hf_stream",
                    f"data_mix.sources.wikipedia.path={root}/wikipedia/20231101.en").data_mix.sources.wikipedia
    assert sorted(d.text for d in instantiate(node).documents()) == sorted(want["wikipedia"])
    with pytest.raises(InputError, match="HF_HUB_OFFLINE"):  # conftest sets it: nothing may download
        list(read_documents(InputSpec(path="wikimedia/wikipedia", format="hf_stream", hf_name="20231101.en"),
                            Rejections()))


def test_a_damaged_zstd_file_keeps_the_records_before_the_damage(tmp_path):
    rows = [{"text": f"line {i} " + "x" * 2000} for i in range(200)]
    whole = tmp_path / "whole.jsonl.zst"
    _jsonl(whole, rows, "zstd")
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    rejections = Rejections()
    docs = list(read_documents(InputSpec(path=str(cut)), rejections))
    assert rejections.counts["rejected_corrupt_zstd"] == 1
    assert 0 < len(docs) < len(rows) and [d.text for d in docs] == [r["text"] for r in rows[: len(docs)]]


def test_unknown_weights_train_as_stand_ins_with_a_warning_and_are_checked(caplog):
    with caplog.at_level(logging.WARNING, logger="infir.config.checks"):
        validate_config(_compose("data_mix=paper"))
    assert "stand-ins, not the paper's" in caplog.text and "web=0.44" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="infir.config.checks"):
        validate_config(_compose("data_mix=paper", "data_mix.weights.web=0.5", "data_mix.unknown_weights=[]"))
    assert "stand-ins" not in caplog.text
    with pytest.raises(ConfigError, match=r"data_mix.unknown_weights names \['prose'\]"):
        validate_config(_compose("data_mix=paper", "data_mix.unknown_weights=[web,prose]"))
    # the sources' `domain:` parameter is what the weights are checked against
    with pytest.raises(ConfigError, match="data_mix.weights.encyclopedia: no source"):
        validate_config(_compose("data_mix=paper", "data_mix.sources.wikipedia=null"))


def test_the_1b_data_quality_sweep_composes_at_the_paper_shape(stand_ins):
    root, _ = stand_ins
    cfg = _compose("experiment=data_quality_llama3_2_1b", f"data_mix.root={root}", hydra_node=True)
    embedded = _compose("experiment=data_quality", hydra_node=True)
    validate_config(cfg)
    assert cfg.hydra.sweeper.params.curation == embedded.hydra.sweeper.params.curation \
        == "raw,heuristic,heuristic_dedup,heuristic_dedup_decontam,full"
    assert (cfg.model.num_hidden_layers, cfg.model.hidden_size, cfg.model.intermediate_size,
            cfg.model.num_attention_heads, cfg.model.num_key_value_heads) == (16, 2048, 8192, 32, 8)
    assert (cfg.data_mix.name, cfg.phase.seq_len, cfg.phase.global_batch_size) == ("paper", 4096, 2048)
    assert cfg.data_mix.token_budget // (4096 * 2048) == 3000 and cfg.optimized_metric == "val/bpb"
    assert cfg.data_mix.sources.fineweb_edu.path == f"{root}/fineweb-edu"


def test_zstd_and_wet_names_announce_their_formats():
    from infir.data.doc_io import data_format

    assert [data_format(Path(n)) for n in ("a.jsonl.zst", "a.jsonl.zstd", "x.warc.wet.gz", "a.gz.parquet")] == \
        ["jsonl", "jsonl", "wet", "parquet"]
