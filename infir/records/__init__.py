"""Rows of record files (jsonl(.gz), json, parquet, HF ``datasets`` dirs), shared by data and evaluation.

A leaf package: it imports nothing else of infir, so ``infir.data`` and ``infir.eval`` can both use it
without one importing the other.
"""

from infir.records.lines import GZIP_ERRORS, json_lines, open_lines
from infir.records.rows import LoadedRecords, read_rows, validate_rows

__all__ = ["GZIP_ERRORS", "LoadedRecords", "json_lines", "open_lines", "read_rows", "validate_rows"]
