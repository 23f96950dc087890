"""File readers: every format, and malformed input named by file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nestvec.errors import InputFileError
from nestvec.io.ingest import scan
from nestvec.io.readers import RecordReader, Span


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_fields_become_metadata(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "d.jsonl",
        '{"id": "a", "text": "hello", "year": 2020}\n\n{"id": 2, "text": "world", "tags": ["x"]}\n',
    )
    records = list(RecordReader(path))
    assert [(r.id, r.text, r.metadata, r.line) for r in records] == [
        ("a", "hello", {"year": 2020}, 1),
        ("2", "world", {"tags": ["x"]}, 3),
    ]


def test_csv_tsv_txt_and_parquet(tmp_path: Path) -> None:
    csv_path = _write(tmp_path / "d.csv", 'doc,body,lang\n1,"multi\nline text",en\n2,second,de\n')
    assert [(r.id, r.text, r.metadata) for r in RecordReader(csv_path, id_field="doc", text_fields=("body",))] == [
        ("1", "multi\nline text", {"lang": "en"}),
        ("2", "second", {"lang": "de"}),
    ]
    tsv_path = _write(tmp_path / "d.tsv", "id\ttext\nx\tone\ny\ttwo\n")
    assert [r.text for r in RecordReader(tsv_path)] == ["one", "two"]
    txt_path = _write(tmp_path / "d.txt", "first line\n\nthird line\n")
    assert [(r.id, r.text) for r in RecordReader(txt_path)] == [("1", "first line"), ("3", "third line")]
    pq_path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": ["p", "q"], "title": ["T1", "T2"], "text": ["alpha", "beta"]}), pq_path)
    records = list(RecordReader(pq_path, text_fields=("title", "text")))
    assert [(r.id, r.text, r.metadata) for r in records] == [("p", "T1\nalpha", {}), ("q", "T2\nbeta", {})]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(InputFileError, match=r"bad\.jsonl:2: invalid UTF-8"):
        list(RecordReader(path))
    csv_path = _write(tmp_path / "bad.csv", b"id,text\n1,fine\n2,\xff\xfe\n")
    with pytest.raises(InputFileError, match=r"bad\.csv:3: invalid UTF-8"):
        list(RecordReader(csv_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a"}\n', r":1: missing text field 'text'"),
        ('{"text": "no id"}\n', r":1: missing id field 'id'.*--no-id"),
        ('{"id": "a", "text": "   "}\n', r":1: empty or whitespace-only text.*--skip-empty"),
        ('{"id": "a", "text": "x"}\n{oops\n', r":2: not valid JSON"),
        ('["a", "b"]\n', r":1: expected a JSON object, found list"),
        ('{"id": "a", "text": null}\n', r":1: text field 'text' is null"),
        ('{"id": "a", "text": ["x", "y"]}\n', r":1: text field 'text' holds a list .*expected a string"),
        ('{"id": "a", "text": true}\n', r":1: text field 'text' holds a bool"),
        ('{"id": {"k": 1}, "text": "x"}\n', r":1: id field 'id' holds a dict .*a string or an integer"),
        ('{"id": 1.5, "text": "x"}\n', r":1: id field 'id' holds a float"),
    ],
)
def test_malformed_jsonl(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        list(RecordReader(_write(tmp_path / "d.jsonl", content)))


def test_skip_empty_counts(tmp_path: Path) -> None:
    reader = RecordReader(
        _write(tmp_path / "d.jsonl", '{"id": "a", "text": ""}\n{"id": "b", "text": "x"}\n'), skip_empty=True
    )
    assert [r.id for r in reader] == ["b"] and reader.skipped == 1


def test_duplicate_ids_in_a_file_name_both_lines(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}, {"id": "a", "text": "3"}]
    path = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows))
    with pytest.raises(InputFileError, match=r"d\.jsonl:3: id 'a' repeats the id of line 1"):
        scan(RecordReader(path))


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"Unknown file extension '\.jsn'.*Did you mean '\.json"):
        RecordReader(_write(tmp_path / "d.jsn", "{}"))
    with pytest.raises(InputFileError, match="no such file"):
        RecordReader(tmp_path / "missing.jsonl")


def test_a_runaway_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """One 300 MB line: refused with file:line after reading at most the 32 MiB bound of it."""
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "')
        for _ in range(300):
            fh.write(b"x" * (1 << 20))
        fh.write(b'"}\n')
    script = (
        "import resource, sys\n"
        "from nestvec.io.readers import RecordReader\n"
        "from nestvec.errors import InputFileError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    list(RecordReader(sys.argv[1]))\n"
        "except InputFileError as exc:\n"
        "    print(exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    message, grown_mb = out.stdout.strip().rsplit("\n", 1)
    assert "huge.jsonl:2" in message and "longer than 33,554,432 bytes" in message
    assert int(grown_mb) < 150, out.stdout  # reading the line whole costs ~900 MB (bytes, str, JSON)


def test_long_csv_fields_are_read(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("id,text\na," + "word " * 100_000 + "\n")
    [record] = list(RecordReader(path))
    assert len(record.text) == 500_000


TYPED_CSV = (
    "id,text,year,score,flag,zip,note,blank\n"
    "1,first,2020,0.5,true,02134,x,\n"
    "2,second,2021,,FALSE,10001,7,\n"
    "3,third,,3,false,94103,,\n"
)


def test_csv_columns_are_typed_from_the_whole_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "typed.csv", TYPED_CSV)
    reader = RecordReader(path)
    assert [r.metadata for r in reader] == [
        {"year": 2020, "score": 0.5, "flag": True, "zip": "02134", "note": "x", "blank": ""},
        {"year": 2021, "score": None, "flag": False, "zip": "10001", "note": "7", "blank": ""},
        {"year": None, "score": 3.0, "flag": False, "zip": "94103", "note": "", "blank": ""},
    ]
    assert reader.metadata_types() == {"year": "int", "score": "float", "flag": "bool"}
    # a shard of the file reads the types of the whole file, not of its own lines
    alone = RecordReader(path, span=Span(4, 4, len("".join(TYPED_CSV.splitlines(True)[:3]))))
    assert [r.metadata["score"] for r in alone] == [3.0]
    tsv = _write(tmp_path / "typed.tsv", TYPED_CSV.replace(",", "\t"))
    assert [r.metadata for r in RecordReader(tsv)] == [r.metadata for r in RecordReader(path)]


def test_a_byte_order_mark_and_a_repeated_header_column(tmp_path: Path) -> None:
    bom = _write(tmp_path / "excel.csv", "\ufeffid,text,year\n1,hello,2020\n".encode())
    assert [(r.id, r.text, r.metadata) for r in RecordReader(bom)] == [("1", "hello", {"year": 2020})]
    txt = _write(tmp_path / "bom.txt", "\ufefffirst line\nsecond\n".encode())
    assert [r.text for r in RecordReader(txt)] == ["first line", "second"]
    jsonl = _write(tmp_path / "bom.jsonl", '\ufeff{"id": "a", "text": "x"}\n'.encode())
    assert [r.id for r in RecordReader(jsonl)] == ["a"]
    twice = _write(tmp_path / "twice.csv", "id,text,year,year\n1,a,2020,2021\n")
    with pytest.raises(InputFileError, match=r"twice\.csv:1: the header repeats the column 'year'"):
        list(RecordReader(twice))


def test_a_csv_collection_filters_its_numbers_as_numbers(tmp_path: Path) -> None:
    source = _write(tmp_path / "typed.csv", TYPED_CSV)
    folder = tmp_path / "c"
    command = [sys.executable, "-m", "nestvec.cli.main"]
    built = subprocess.run([*command, "index", "build", str(source), str(folder), "--no-progress"], capture_output=True)
    assert built.returncode == 0, built.stderr[-2000:]
    import nestvec

    with nestvec.Collection.open(folder) as collection:
        assert {h.id for h in collection.search("x", k=5, filter={"year": 2020})} == {"1"}
        assert {h.id for h in collection.search("x", k=5, filter={"year": {"$gte": 2021}})} == {"2"}
        assert {h.id for h in collection.search("x", k=5, filter={"flag": False})} == {"2", "3"}
        assert {h.id for h in collection.search("x", k=5, filter={"zip": "02134"})} == {"1"}
