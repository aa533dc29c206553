"""Readers count every unusable record under a reason; nothing crashes, nothing vanishes."""

from __future__ import annotations

import gzip
import json

import pytest

from infir.data.doc_io import InputSpec, Rejections, read_documents, read_jsonl_gz, write_jsonl_gz
from infir.data.documents import Document


def test_jsonl_gz_bad_records_are_counted_by_reason(tmp_path):
    path = tmp_path / "crawl.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(json.dumps({"id": "a", "text": "A good document."}).encode() + b"\n")
        f.write(b'{"id": "b", "text": "unterminated\n')                      # invalid JSON
        f.write(b'{"id": "c", "text": "caf\xe9"}\n')                          # invalid UTF-8
        f.write(json.dumps({"id": "d", "body": "no text"}).encode() + b"\n")   # missing text
        f.write(json.dumps({"id": "e", "text": "  \n "}).encode() + b"\n")     # empty text
        f.write(json.dumps({"id": "f", "text": "x" * 5000}).encode() + b"\n")  # oversize
        f.write(json.dumps(["not", "an", "object"]).encode() + b"\n")
        f.write(b'{"id": "g", "text": "lone \\ud800 surrogate"}\n')           # invalid UTF-8 via escape
        f.write(json.dumps({"id": "h", "text": "Another good one.", "url": "u"}).encode() + b"\n")
    rejections = Rejections()
    docs = list(read_documents(InputSpec(str(path), max_bytes=1000, domain="web"), rejections))
    assert [d.id for d in docs] == ["a", "h"] and docs[1].metadata == {"url": "u"}
    assert dict(rejections.counts) == {"rejected_invalid_json": 1, "rejected_invalid_utf8": 2,
                                       "rejected_missing_text": 1, "rejected_empty_text": 1,
                                       "rejected_oversize": 1, "rejected_not_an_object": 1}
    assert len(docs) + rejections.total == 9  # every record accounted for
    assert any("crawl.jsonl.gz:2" in s for s in rejections.samples["rejected_invalid_json"])


def test_parquet_hf_dataset_and_folder_readers(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"r{i}", "content": f"Row number {i}."} for i in range(5)] + [{"id": "r5", "content": ""}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    rej = Rejections()
    docs = list(read_documents(InputSpec(str(tmp_path / "data.parquet"), text_field="content"), rej))
    assert len(docs) == 5 and rej.counts == {"rejected_empty_text": 1}

    datasets.Dataset.from_list(rows[:3]).save_to_disk(str(tmp_path / "hf"))
    docs = list(read_documents(InputSpec(str(tmp_path / "hf"), text_field="content"), Rejections()))
    assert [d.text for d in docs] == ["Row number 0.", "Row number 1.", "Row number 2."]

    (tmp_path / "repo" / "pkg").mkdir(parents=True)
    (tmp_path / "repo" / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (tmp_path / "repo" / "README.txt").write_text("Read me.")
    (tmp_path / "repo" / "blob.bin").write_bytes(b"\xff\xfe\x00")
    rej = Rejections()
    docs = {d.metadata["path"]: d for d in read_documents(InputSpec(str(tmp_path / "repo"), domain="web"), rej)}
    assert docs["pkg/mod.py"].domain == "code" and docs["pkg/mod.py"].metadata["language"] == "python"
    assert docs["README.txt"].domain == "web" and rej.counts == {"rejected_invalid_utf8": 1}


def test_bad_paths_and_formats_fail_fast_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="inputs.path"):
        read_documents(InputSpec(str(tmp_path / "missing.jsonl")), Rejections())
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="data.csv"):
        read_documents(InputSpec(str(tmp_path / "data.csv")), Rejections())


def test_shard_round_trip_keeps_provenance(tmp_path):
    docs = [Document("x/1", "text ü", "src", "math", {"split": "train", "score": 3.5})]
    write_jsonl_gz(docs, tmp_path / "s.jsonl.gz")
    assert read_jsonl_gz(tmp_path / "s.jsonl.gz") == docs
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file
