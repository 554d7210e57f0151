"""Export files: nested fields as dotted columns, a column of mixed or nested values as JSON
text, every format read back by the library a user would read it with."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq

from mixpeek_orchestration.ingest.exports import WRITERS, _selected, flatten

ROWS = [
    {"document_id": "doc_1", "metadata": {"topic": "sport", "n": 1, "tags": ["a", "b"]}},
    {"document_id": "doc_2", "metadata": {"topic": "food", "n": "two"}, "status": "failed"},
]


def test_nested_fields_become_dotted_columns() -> None:
    assert flatten(ROWS[0]) == {
        "document_id": "doc_1", "metadata.topic": "sport", "metadata.n": 1,
        "metadata.tags": ["a", "b"],
    }  # fmt: skip
    assert _selected(ROWS[0], ["metadata.topic"]) == {
        "document_id": "doc_1",
        "metadata.topic": "sport",
    }
    assert _selected(ROWS[0], ["metadata"])["metadata.n"] == 1


def test_every_format_reads_back(tmp_path: Path) -> None:
    WRITERS["json"](ROWS, tmp_path / "d.jsonl")
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == ROWS

    WRITERS["csv"](ROWS, tmp_path / "d.csv")
    with (tmp_path / "d.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert read[0]["metadata.tags"] == '["a", "b"]' and read[1]["status"] == "failed"
    assert read[0]["status"] == ""  # a column one row lacks is empty there

    WRITERS["parquet"](ROWS, tmp_path / "d.parquet")
    table = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert table[0]["metadata.topic"] == "sport" and table[1]["status"] == "failed"
    assert table[0]["metadata.n"] == "1" and table[1]["metadata.n"] == "two"  # mixed: text
    assert json.loads(table[0]["metadata.tags"]) == ["a", "b"]
