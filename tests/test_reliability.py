"""Two writers on one collection, and model files that change under a collection."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

import nestvec
from nestvec import Collection, Document
from nestvec.errors import CollectionError, InputError, RecipeMismatchError

TEXTS = {f"d{i}": f"document number {i} about topic {i % 7}" for i in range(20)}
TEXTS |= {"x": "quantum chromodynamics of heavy quarks", "y": "the history of the roman empire"}


def finds_itself(collection: Collection) -> list[tuple[str, str, float]]:
    """Documents whose own text does not find them first with their own vector (score ~1)."""
    wrong = []
    for doc_id, text in TEXTS.items():
        hit = collection.search(text, k=1)[0]
        if hit.id != doc_id or hit.score < 0.99:
            wrong.append((doc_id, hit.id, round(hit.score, 3)))
    return wrong


@pytest.mark.parametrize(
    "values", [{"codes": "binary", "rescore": 20}, {"codes": "int8", "rescore": 10}, {"index": "ivf"}]
)
def test_two_writers_never_pair_a_row_with_another_rows_vector(
    tmp_path: Path, encoder: nestvec.Encoder, values: dict
) -> None:
    """One writer keeps the dead row of an add-then-upsert; the other, replaying, skips it. Its
    checkpoint used to write its row table over the first one's vector file (found in review:
    a query for one text then found another at score 1.0)."""
    path = tmp_path / "c"
    with Collection.create(path, model=encoder, **values) as first:
        first.add([Document(i, t) for i, t in TEXTS.items() if i.startswith("d")])
    a, b = Collection.open(path, model=encoder), Collection.open(path, model=encoder)
    a.add([Document("x", "apples and pears in a basket")])
    a.upsert([Document("x", TEXTS["x"])])
    b.search("anything", k=1)  # b replays a's writes: it never holds x's first version
    a.checkpoint()
    b.add([Document("y", TEXTS["y"])])
    b.checkpoint()
    a.close()
    b.close()
    with Collection.open(path, model=encoder) as reopened:
        assert reopened.info().index_status == "loaded from checkpoint"
        assert finds_itself(reopened) == []
        assert nestvec.check_collection(path).ok


def test_a_changed_tokenizer_is_refused_naming_the_file(tmp_path: Path, minilm_dir: Path) -> None:
    """Found in review: only weight files were in the identity, so a copy of the model with two
    vocabulary entries swapped opened the collection and embedded every query differently."""
    model = tmp_path / "model"
    shutil.copytree(minilm_dir, model)
    with Collection.create(tmp_path / "c", model=str(model)) as collection:
        collection.add([Document("a", "a short text")])
    vocab = model / "vocab.txt"
    words = vocab.read_text(encoding="utf-8").splitlines()
    i, j = words.index("apple"), words.index("pear")
    words[i], words[j] = words[j], words[i]
    vocab.write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = model / "tokenizer.json"
    tokenizer.write_text(
        tokenizer.read_text(encoding="utf-8")
        .replace('"apple":', '"@@tmp":')
        .replace('"pear":', '"apple":')
        .replace('"@@tmp":', '"pear":'),
        encoding="utf-8",
    )
    with pytest.raises(RecipeMismatchError, match=r"tokenizer\.json"):
        Collection.open(tmp_path / "c", model=str(model))
    with pytest.raises(RecipeMismatchError, match=r"vocab\.txt"):
        Collection.open(tmp_path / "c").search("apple", k=1)


def test_model_files_are_hashed_under_a_hidden_folder(tmp_path: Path, minilm_dir: Path) -> None:
    """Hub caches live under ~/.cache: the hidden parent must not hide every file from the identity."""
    model = tmp_path / ".cache" / "model"
    shutil.copytree(minilm_dir, model)
    files = nestvec.load_encoder(str(model)).identity.details["files"]
    assert {"tokenizer.json", "vocab.txt", "modules.json", "1_Pooling/config.json"} <= set(files)


def test_add_validates_the_whole_file_before_writing(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    """Found in review: a bad record late in the file came after the first batches were committed."""
    from typer.testing import CliRunner

    from nestvec.cli.main import app

    path = tmp_path / "c"
    Collection.create(path, model=encoder).close()
    lines = [json.dumps({"id": f"r{i}", "text": f"record {i}"}) for i in range(40)]
    lines.append('{"id": "bad", "text": "fine text", "metadata": {"score": NaN}}')
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["add", str(path), str(tmp_path / "in.jsonl"), "--batch-size", "8"])
    assert result.exit_code == 1
    assert "in.jsonl:41" in result.output and "JSON-serializable" in result.output
    with Collection.open(path) as collection:
        assert collection.count() == 0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (Document("a\x00b", "text"), "control character"),
        (Document("x" * 600, "text"), "at most 512"),
        (Document("deep", "text", json.loads('{"a":' * 40 + "1" + "}" * 40)), "deeper than 32"),
        (Document("big", "text", {"n": 10**30}), "beyond 64-bit"),
        (Document("huge", "text", {"blob": "x" * 70_000}), "the limit is 65,536"),
    ],
)
def test_documents_beyond_the_limits_are_refused_before_any_write(
    tmp_path: Path, encoder: nestvec.Encoder, doc: Document, message: str
) -> None:
    with Collection.create(tmp_path / "c", model=encoder) as collection:
        with pytest.raises(InputError, match=message):
            collection.add([Document("ok", "a fine document"), doc])
        assert collection.count() == 0


def test_filters_beyond_the_limits_are_input_errors(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    with Collection.create(tmp_path / "c", model=encoder) as collection:
        collection.add([Document("a", "some text", {"n": 1})])
        nested: dict = {"n": 1}
        for _ in range(3000):  # compiling recursed: RecursionError, a 500 in the server
            nested = {"$and": [nested]}
        with pytest.raises(InputError, match="deeper than 16"):
            collection.search("text", k=1, filter=nested)
        with pytest.raises(InputError, match="more than 1024"):
            collection.search("text", k=1, filter={"n": {"$in": list(range(40_000))}})


def test_searches_racing_another_process_deletes_never_fail(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    """Found in review: a document deleted between the index search and the fetch raised KeyError."""
    path = tmp_path / "c"
    docs = [Document(f"d{i}", f"note {i} about the weather and rain") for i in range(40)]
    with Collection.create(path, model=encoder, bm25=True) as first:
        first.add(docs)
    reader, writer = Collection.open(path, model=encoder), Collection.open(path, model=encoder)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            writer.delete([d.id for d in docs[:20]])
            writer.add(docs[:20])

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(150):
            for mode in ("dense", "sparse", "hybrid"):
                hits = reader.search("weather and rain", k=30, mode=mode)
                assert len({h.id for h in hits}) == len(hits) and all(h.text for h in hits)
    finally:
        stop.set()
        thread.join()
        reader.close()
        writer.close()


def test_check_finds_damage_and_repair_rebuilds_from_the_store(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    path = tmp_path / "c"
    with Collection.create(path, model=encoder, codes="int8") as collection:
        collection.add([Document(i, t) for i, t in TEXTS.items()])
    assert nestvec.check_collection(path).ok
    [rows] = (path / "index").glob("rows-*.safetensors")
    data = bytearray(rows.read_bytes())
    data[-5] ^= 0xFF
    rows.write_bytes(bytes(data))
    (path / "index" / f".{rows.name}.tmp-999999999").write_bytes(b"half")
    report = nestvec.check_collection(path, model=False)
    assert {f.part for f in report.findings if not f.ok} == {"index"}
    assert "1 leftover file(s)" in next(f.detail for f in report.findings if f.part == "files")
    repaired = nestvec.repair_collection(path)
    assert repaired.after.ok and any("rebuilt the vector index" in a for a in repaired.actions)
    with Collection.open(path, model=encoder) as collection:
        assert finds_itself(collection) == []


def test_a_damaged_store_is_reported_not_repaired(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    path = tmp_path / "c"
    with Collection.create(path, model=encoder) as collection:
        collection.add([Document(f"d{i}", "words " * 200 + str(i)) for i in range(60)])
    store = path / "store.sqlite3"
    data = bytearray(store.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for number in (2, 3):  # the b-tree headers of two pages (SQLite keeps no checksums of cell contents)
        data[(number - 1) * page : (number - 1) * page + 12] = b"\x0d" + b"\xff" * 11
    store.write_bytes(bytes(data))
    report = nestvec.check_collection(path, model=False)
    assert not report.ok and not next(f for f in report.findings if f.part == "store").ok
    with pytest.raises(CollectionError, match="restore the collection from a backup"):
        nestvec.repair_collection(path)
    with pytest.raises(CollectionError, match="the store is damaged"):  # a clear error, not sqlite3's
        Collection.open(path, model=encoder).search("words", k=3)


def test_deleting_nothing_does_not_skip_another_process_write(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    """Found by the racing-client test: a delete of unknown ids returned the store's current
    version as if it were our own write, so when exactly one write of another process had landed
    since, the index marked it seen without its rows: searches and the next checkpoint lacked it."""
    path = tmp_path / "c"
    with Collection.create(path, model=encoder) as first:
        first.add([Document(i, t) for i, t in TEXTS.items() if i != "x"])
    server = Collection.open(path, model=encoder)
    catch_up = server._live.current

    def another_process_writes_right_after() -> object:
        index = catch_up()  # the delete catches up with the store, then the other write lands
        with Collection.open(path, model=encoder) as cli:
            cli.add([Document("x", TEXTS["x"])])
        return index

    server._live.current = another_process_writes_right_after  # type: ignore[method-assign]
    assert server.delete(["no-such-id"]) == []
    server._live.current = catch_up  # type: ignore[method-assign]
    assert server.search("quantum chromodynamics", k=1)[0].id == "x"
    server.close()
    assert nestvec.check_collection(path, model=False).ok
