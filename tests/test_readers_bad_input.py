"""What a user's messy inputs do: folders of mixed formats, damaged .gz files, BOMs, nulls, empty
inputs, symlinks, a full disk. Each is read as far as it can be, counted under a reason, and named."""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import REPO
from infir.data.curation.pipeline import curate
from infir.data.doc_io import InputError, InputSpec, Rejections, read_documents, write_jsonl_gz
from infir.data.documents import Document


def _records(n: int, prefix: str = "d") -> list[dict]:
    return [{"id": f"{prefix}{i}", "text": f"Document {prefix}{i} about the river valley."} for i in range(n)]


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _read(spec: InputSpec) -> tuple[list[Document], Rejections]:
    rejections = Rejections()
    return list(read_documents(spec, rejections)), rejections


# --- point 14: each file of a folder in its own format -------------------------------------------


def test_folder_reads_each_file_in_the_format_its_name_announces(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path / "crawl"
    (root / "part2").mkdir(parents=True)
    _write_jsonl(root / "part1.jsonl", _records(100, "a"))
    _write_jsonl(root / "part2" / "more.jsonl.gz", _records(120, "b"))
    (root / "extra.json").write_text(json.dumps(_records(3, "c")))
    pq.write_table(pa.Table.from_pylist(_records(4, "p")), root / "table.parquet")
    datasets.Dataset.from_list(_records(2, "h")).save_to_disk(str(root / "hf"))
    (root / "notes.txt").write_text("A plain text note is one document.")
    (root / "tool.py").write_text("def f():\n    return 1\n")

    docs, rejections = _read(InputSpec(str(root), domain="web"))
    by_id = {d.id: d for d in docs}
    assert len(docs) == 100 + 120 + 3 + 4 + 2 + 2 and rejections.total == 0
    assert by_id["b7"].text == "Document b7 about the river valley." and by_id["p3"].source == "crawl"
    assert by_id["crawl/tool.py"].domain == "code" and by_id["crawl/notes.txt"].metadata["path"] == "notes.txt"

    # format=files keeps the old meaning, for code repositories: every file is one text document
    as_text, _ = _read(InputSpec(str(root), format="files", glob="*.jsonl"))
    assert [d.id for d in as_text] == ["crawl/part1.jsonl"] and as_text[0].text.count("\n") == 100


def test_folder_records_without_ids_get_ids_unique_across_files(tmp_path):
    for name in ("x.jsonl", "y.jsonl"):
        (tmp_path / name).write_text('{"text": "First line of text."}\n{"text": "Second line of text."}\n')
    docs, _ = _read(InputSpec(str(tmp_path)))
    assert len({d.id for d in docs}) == 4


# --- point 15: a truncated or fake .gz keeps what it can and names the file -----------------------


def _complete_lines_before_truncation(data: bytes) -> int:
    prefix = zlib.decompressobj(wbits=31).decompress(data)
    return prefix.count(b"\n")


def test_truncated_gzip_keeps_the_records_before_the_cut(tmp_path):
    full = gzip.compress("".join(json.dumps(r) + "\n" for r in _records(300)).encode())
    path = tmp_path / "crawl.jsonl.gz"
    path.write_bytes(full[: len(full) // 2])
    docs, rejections = _read(InputSpec(str(path)))
    expected = _complete_lines_before_truncation(full[: len(full) // 2])
    assert 0 < expected < 300
    assert [d.id for d in docs] == [f"d{i}" for i in range(expected)]
    assert dict(rejections.counts) == {"rejected_corrupt_gzip": 1}
    assert str(path) in rejections.samples["rejected_corrupt_gzip"][0]


@pytest.mark.parametrize("damage", ["not_gzip", "bad_crc", "bad_deflate"])
def test_damaged_gzip_is_counted_not_raised(tmp_path, damage):
    data = "".join(json.dumps(r) + "\n" for r in _records(50)).encode()
    blob = bytearray(gzip.compress(data))
    if damage == "not_gzip":
        blob = bytearray(data)  # a plain file that only says it is gzip
    elif damage == "bad_crc":
        blob[-8] ^= 0xFF
    else:
        blob[len(blob) // 2] ^= 0xFF
    path = tmp_path / "crawl.jsonl.gz"
    path.write_bytes(bytes(blob))
    docs, rejections = _read(InputSpec(str(path)))
    assert rejections.counts["rejected_corrupt_gzip"] == 1
    assert str(path) in rejections.samples["rejected_corrupt_gzip"][0]
    assert [d.id for d in docs] == [f"d{i}" for i in range(len(docs))]  # a clean prefix, nothing invented


def test_a_corrupt_input_does_not_stop_the_other_inputs(tmp_path):
    good = _write_jsonl(tmp_path / "good.jsonl.gz", _records(40, "g"))
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text(json.dumps({"text": "not compressed"}) + "\n")
    full = gzip.compress("".join(json.dumps(r) + "\n" for r in _records(200, "t")).encode())
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(full[: len(full) // 2])
    kept_of_truncated = _complete_lines_before_truncation(full[: len(full) // 2])

    result = curate([], {"name": "read_only"}, tmp_path / "cache", progress=False,
                    inputs=[InputSpec(str(p)) for p in (fake, good, truncated)])
    read = result.funnel[0]
    assert read["kept"] == 40 + kept_of_truncated and read["dropped"] == {"rejected_corrupt_gzip": 2}
    assert read["read"] == read["kept"] + sum(read["dropped"].values())
    assert {d.id for d in result.documents()} >= {f"g{i}" for i in range(40)}


# --- point 18: the smaller bad-input cases --------------------------------------------------------


def test_a_utf8_bom_does_not_spoil_the_first_record(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(json.dumps(r).encode() + b"\n" for r in _records(3)))
    docs, rejections = _read(InputSpec(str(path)))
    assert [d.id for d in docs] == ["d0", "d1", "d2"] and rejections.total == 0
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "note.txt").write_bytes(b"\xef\xbb\xbfHello there.")
    docs, _ = _read(InputSpec(str(tmp_path / "folder")))
    assert docs[0].text == "Hello there."


def test_null_text_is_reported_as_null_not_as_a_missing_field(tmp_path):
    path = tmp_path / "nulls.jsonl"
    path.write_text('{"id": "a", "text": null}\n{"id": "b", "body": "x"}\n')
    _, rejections = _read(InputSpec(str(path)))
    samples = rejections.samples["rejected_missing_text"]
    assert rejections.counts["rejected_missing_text"] == 2
    assert "field 'text' is null" in samples[0] and "no field 'text' (fields: id, body)" in samples[1]


def test_empty_file_and_parquet_without_the_text_column_are_counted(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "empty.jsonl").write_bytes(b"")
    docs, rejections = _read(InputSpec(str(tmp_path / "empty.jsonl")))
    assert not docs and dict(rejections.counts) == {"rejected_empty_file": 1}

    pq.write_table(pa.Table.from_pylist([{"id": i, "content": "words"} for i in range(7)]), tmp_path / "t.parquet")
    docs, rejections = _read(InputSpec(str(tmp_path / "t.parquet")))
    assert not docs and dict(rejections.counts) == {"rejected_missing_text_column": 7}
    assert "no column 'text' (columns: id, content)" in rejections.samples["rejected_missing_text_column"][0]


def test_curation_that_reads_nothing_fails_naming_every_input(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "empty_folder").mkdir()
    inputs = [InputSpec(str(tmp_path / "empty.jsonl")), InputSpec(str(tmp_path / "empty_folder"))]
    with pytest.raises(InputError, match="no usable document") as err:
        curate([], {"name": "read_only"}, tmp_path / "cache", inputs=inputs, progress=False)
    assert "empty.jsonl (rejected_empty_file=1)" in str(err.value) and "empty_folder (nothing to read" in str(err.value)
    # one good input among empty ones: the run goes through, the empty ones are counted
    inputs.append(InputSpec(str(_write_jsonl(tmp_path / "good.jsonl", _records(5)))))
    read = curate([], {"name": "read_only"}, tmp_path / "cache", inputs=inputs, progress=False).funnel[0]
    assert (read["read"], read["kept"], read["dropped"]) == (6, 5, {"rejected_empty_file": 1})


def test_cli_that_reads_nothing_exits_with_one_line_naming_the_input(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "infir.data", "curation=raw", f"inputs=[{tmp_path}/empty.jsonl]",
                           f"paths.cache_dir={tmp_path}/cache", f"paths.output_dir={tmp_path}/out"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("[infir] curation failed:") and f"{tmp_path}/empty.jsonl" in last
    assert "Traceback" not in proc.stderr


def test_symlinks_are_read_once_and_broken_links_are_counted(tmp_path):
    root = tmp_path / "docs"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("The one and only document A.")
    (root / "real" / "b.jsonl").write_text('{"id": "b", "text": "Record B."}\n')
    (root / "alias_a.txt").symlink_to(root / "real" / "a.txt")
    (root / "zz_alias_dir").symlink_to(root / "real", target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)     # back into an enclosing folder
    (root / "self").symlink_to(root / "self")                                 # ELOOP
    (root / "gone.txt").symlink_to(tmp_path / "deleted.txt")                  # dangling

    docs, rejections = _read(InputSpec(str(root)))
    assert sorted(d.text for d in docs) == ["Record B.", "The one and only document A."]
    assert dict(rejections.counts) == {"rejected_dangling_link": 1, "rejected_symlink_loop": 2}
    assert any("gone.txt" in s for s in rejections.samples["rejected_dangling_link"])


def test_a_dangling_symlink_input_fails_naming_it(tmp_path):
    (tmp_path / "crawl.jsonl").symlink_to(tmp_path / "moved.jsonl")
    with pytest.raises(FileNotFoundError, match="dangling symlink.*crawl.jsonl"):
        read_documents(InputSpec(str(tmp_path / "crawl.jsonl")), Rejections())


def test_config_mistakes_are_one_line_errors_naming_the_input(tmp_path):
    with pytest.raises(InputError, match=r"inputs\[2\]: unknown key\(s\) \['pth'\]"):
        InputSpec.from_config({"pth": "crawl.jsonl"}, "inputs[2]")
    with pytest.raises(InputError, match="inputs\\[0\\].format='csv'"):
        InputSpec.from_config({"path": "crawl.csv", "format": "csv"}, "inputs[0]")
    path = _write_jsonl(tmp_path / "crawl.jsonl", _records(2))
    assert InputSpec.from_config(str(path), "inputs[0]").path == str(path)  # a bare path is enough
    with pytest.raises(InputError, match="format=folder needs a folder"):
        read_documents(InputSpec(str(path), format="folder"), Rejections())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to produce a real ENOSPC")
def test_a_full_disk_names_the_file_being_written(tmp_path):
    shard = tmp_path / "shard_00000.jsonl.gz"
    # The writer's temp file is a link to /dev/full, whose writes fail with ENOSPC like a full disk's.
    (tmp_path / f".{shard.name}.{os.getpid()}.tmp").symlink_to("/dev/full")
    with pytest.raises(OSError) as err:
        write_jsonl_gz([Document("a", "text", "s", "web")], shard)
    assert err.value.errno == errno.ENOSPC and str(shard) in str(err.value)
    assert not shard.exists()
