"""The `nestvec` CLI: real processes for the main path, in-process runs for error paths."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import nestvec
from nestvec.cli.main import app
from tests.conftest import PAPERS, ROOT

runner = CliRunner()


def nestvec_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "nestvec.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="session")
def demo_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "papers"
    done = nestvec_cli(
        "index", "build", str(PAPERS), str(path), "--text-field", "title", "--text-field", "text", "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added"] == 678 and report["truncated"] > 0
    return path


def test_search_demo_finds_binary_embedding_papers(demo_collection: Path) -> None:
    done = nestvec_cli(
        "search", str(demo_collection), "binary quantization of embeddings for retrieval", "-k", "3", "--json"
    )
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)["hits"]
    assert len(hits) == 3
    assert any("binary" in h["text"].split("\n")[0].lower() for h in hits), [h["text"][:80] for h in hits]


def test_info_add_delete_in_process(demo_collection: Path, tmp_path: Path) -> None:
    info = json.loads(runner.invoke(app, ["info", str(demo_collection), "--json"]).stdout)
    assert info["documents"] == 678 and info["dim"] == 384 and info["recipe"]["encoder"]["model"] == "minilm"
    extra = tmp_path / "extra.csv"
    extra.write_text("id,text,topic\nnew-1,Product quantization for nearest neighbour search,ann\n", encoding="utf-8")
    added = runner.invoke(app, ["add", str(demo_collection), str(extra), "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["added"] == 1
    again = runner.invoke(app, ["add", str(demo_collection), str(extra)])
    assert again.exit_code == 1 and "already stored" in again.output and "--upsert" in again.output
    assert runner.invoke(app, ["add", str(demo_collection), str(extra), "--upsert"]).exit_code == 0
    gone = json.loads(runner.invoke(app, ["delete", str(demo_collection), "new-1", "nope", "--json"]).stdout)
    assert gone == {"deleted": ["new-1"], "not_found": ["nope"]}
    assert json.loads(runner.invoke(app, ["info", str(demo_collection), "--json"]).stdout)["documents"] == 678


def test_search_text_output_shows_metadata_and_chunks(tmp_path: Path) -> None:
    source = tmp_path / "docs.jsonl"
    long = "Binary quantization keeps one bit per dimension. " * 60
    rows = [{"id": "long", "text": long, "year": 2021}, {"id": "short", "text": "Product quantization.", "year": 2019}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    built = runner.invoke(app, ["index", "build", str(source), str(tmp_path / "c"), "--long-documents", "split"])
    assert built.exit_code == 0, built.output
    found = runner.invoke(app, ["search", str(tmp_path / "c"), "binary quantization bits", "-k", "2"])
    assert found.exit_code == 0, found.output
    lines = found.output.splitlines()
    at = next(i for i, line in enumerate(lines) if "] long " in line)
    assert "year=2021" in lines[at + 1] and "chunk " in lines[at + 1] and "(characters " in lines[at + 1]
    assert any("year=2019" in line for line in lines)


def test_embed_to_npy_and_parquet_match_the_library(tmp_path: Path) -> None:
    source = tmp_path / "few.jsonl"
    source.write_text("".join(PAPERS.read_text(encoding="utf-8").splitlines(keepends=True)[:20]), encoding="utf-8")
    assert runner.invoke(app, ["embed", str(source), str(tmp_path / "v.npy"), "--batch-size", "7"]).exit_code == 0
    assert runner.invoke(app, ["embed", str(source), str(tmp_path / "v.parquet"), "--json"]).exit_code == 0
    texts = [json.loads(line)["text"] for line in source.read_text(encoding="utf-8").splitlines()]
    expected = nestvec.load_encoder("minilm").encode(texts)
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), expected, atol=1e-5)
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.column("id").to_pylist()[0] == json.loads(source.read_text().splitlines()[0])["id"]
    np.testing.assert_allclose(np.asarray(table.column("embedding").to_pylist(), dtype=np.float32), expected, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few.jsonl", "v.npy", "v.parquet"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{missing}", "query"], "does not exist"),
        (["search", "{demo}", "query", "-k", "0"], "k must be a positive integer"),
        (["search", "{demo}", "query", "--filter", "[bad"], "--filter must be JSON"),
        (["search", "{demo}", "query", "--model", "nosuchmodel"], "was not found"),
        (["info", "{missing}"], "does not exist"),
        (["embed", "{bad_utf8}", "{out}.npy"], ":2: invalid UTF-8"),
        (["embed", "{good}", "{out}.txt"], "should end in one of .npy, .parquet"),
        (["embed", "{good}", "/proc/out.npy"], "Cannot write /proc/out.npy"),
        (["index", "build", "{good}", "{out}", "--rescore", "10"], "with float32 codes it changes nothing"),
        (["search", "{demo}", "query", "--fusion", "rrf"], "with mode dense they do nothing"),
        (["embed", "{good}", "{folder}"], "(it is a folder); choose a writable output path"),
        (["keys", "revoke", "{missing}.json", "abc", "--json"], '"type": "InputError"'),
        (["add", "{good}", "{demo}"], "add takes COLLECTION then INPUT"),
        (["index", "build", "{good}", "{good}/new"], "good.jsonl is a file, not a folder"),
        (["index", "build", "{good}", "/proc/new"], "Cannot create /proc/new"),
        (["serve", "--data-dir", "{good}", "--port", "0"], "good.jsonl is a file; give a folder"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    args: list[str], message: str, demo_collection: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "\xff"}\n')
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "text": "ok"}\n')
    names = {
        "missing": tmp_path / "none",
        "demo": demo_collection,
        "bad_utf8": bad,
        "good": good,
        "out": tmp_path / "out",
        "folder": tmp_path / "folder.npy",
    }
    (tmp_path / "folder.npy").mkdir()
    result = runner.invoke(app, [a.format(**names) for a in args])
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.npy").exists()


def test_failed_index_build_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "dups.jsonl"
    bad.write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n')
    done = runner.invoke(app, ["index", "build", str(bad), str(tmp_path / "coll"), "--json"])
    assert done.exit_code == 1 and "repeats the id of line 1" in done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dups.jsonl"]


def test_index_build_with_binary_codes_and_dims(tmp_path: Path) -> None:
    source = tmp_path / "few.jsonl"
    source.write_text("".join(PAPERS.read_text(encoding="utf-8").splitlines(keepends=True)[:30]), encoding="utf-8")
    target = tmp_path / "binary"
    args = ["index", "build", str(source), str(target), "--codes", "binary", "--dims", "256", "--json"]
    built = runner.invoke(app, args)
    assert built.exit_code == 0, built.output
    info = json.loads(runner.invoke(app, ["info", str(target), "--json"]).stdout)
    assert info["index"] == "flat+binary rescore×4" and info["recipe"]["vectors"]["dims"] == 256
    hits = json.loads(runner.invoke(app, ["search", str(target), "embeddings", "-k", "3", "--json"]).stdout)["hits"]
    assert len(hits) == 3
    wrong = runner.invoke(app, ["index", "build", str(source), str(tmp_path / "x"), "--index", "hnws"])
    assert wrong.exit_code == 1 and "Unknown index strategy 'hnws'" in wrong.output


def test_version_and_outputs_in_new_folders(tmp_path: Path) -> None:
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"nestvec {nestvec.__version__}"
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "a", "text": "ok"}\n')
    for name in ("out.npy", "out.parquet"):
        made = runner.invoke(app, ["embed", str(good), str(tmp_path / "new" / "deeper" / name), "--no-progress"])
        assert made.exit_code == 0, made.output
        assert (tmp_path / "new" / "deeper" / name).is_file()


def test_library_misuse_is_a_nestvec_error(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    for bad in ([None], ["fine", 3], [b"bytes"]):
        with pytest.raises(nestvec.InputError, match="encode\\(\\) takes strings; text"):
            encoder.encode(bad)  # type: ignore[list-item]
    with pytest.raises(nestvec.InputError, match="text 1 is not valid Unicode: an unpaired surrogate at position 4"):
        encoder.encode(["fine", "bad \ud800 text"])
    collection = nestvec.Collection.create(tmp_path / "c", model="minilm")
    collection.close()
    for use in (lambda: collection.search("x"), lambda: collection.add([nestvec.Document("a", "b")])):
        with pytest.raises(nestvec.CollectionError, match="the collection is closed; open it again"):
            use()


def _stored(folder: Path) -> int:
    """Documents committed so far, read from the store alone: a Collection handle would load and, on
    closing, checkpoint the index under the lock the running add takes after each batch, and could
    wait behind it until the add ends."""
    import sqlite3

    from nestvec.store.folder import STORE_FILE

    with contextlib.closing(sqlite3.connect(f"file:{folder / STORE_FILE}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])


def test_an_interrupted_add_resumes_with_skip_existing(tmp_path: Path) -> None:
    import signal
    import time

    # Many short documents: the add must still be running when the poll below sees its first
    # batches, even on a loaded machine (3,000 longer ones once finished between two polls).
    total = 9000
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i}"}) + "\n" for i in range(total)))
    folder = tmp_path / "c"
    nestvec.Collection.create(folder, model="minilm").close()
    command = [sys.executable, "-m", "nestvec.cli.main", "add", str(folder), str(source), "--batch-size", "64"]

    # As from a shell: Ctrl-C handled by Python whatever disposition or mask the test runner has.
    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    job = subprocess.Popen(
        [*command, "--no-progress"], stderr=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=default_sigint
    )
    deadline, seen = time.monotonic() + 300, []
    while time.monotonic() < deadline and job.poll() is None:
        seen.append(_stored(folder))
        if seen[-1] >= 128:
            break
        time.sleep(0.2)
    running = job.poll() is None
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=120)
    why = f"polls saw {seen[-5:]} stored ({len(seen)} polls), add still running at the signal: {running}; {err[-500:]}"
    assert job.returncode == 130, why
    assert "interrupted; what was stored before stays" in err and "Traceback" not in err
    with nestvec.Collection.open(folder) as c:
        stored = len(c)
    assert 0 < stored < total
    again = nestvec_cli("add", str(folder), str(source), "--no-progress")
    assert again.returncode == 1 and "--skip-existing" in again.stderr
    resumed = nestvec_cli("add", str(folder), str(source), "--skip-existing", "--no-progress", "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["skipped"] == stored and json.loads(resumed.stdout)["added"] == total - stored
    with nestvec.Collection.open(folder) as c:
        assert len(c) == total


def test_progress_shows_on_a_terminal_for_any_job_over_a_second(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    source = tmp_path / "few.jsonl"  # 250 texts: under the old 256-text threshold, but seconds of work
    source.write_text("".join(json.dumps({"id": str(i), "text": f"sentence {i} " * 90}) + "\n" for i in range(250)))
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 columns wide
    command = [sys.executable, "-m", "nestvec.cli.main", "embed", str(source), str(tmp_path / "out.npy")]
    done = subprocess.run(command, stderr=child, stdout=subprocess.PIPE, cwd=ROOT, timeout=300)
    os.close(child)
    shown = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(parent)
    assert done.returncode == 0
    assert b"250/250" in shown and b"doc" in shown, shown[-500:]


def test_get_list_and_collections(tmp_path: Path) -> None:
    source = tmp_path / "docs.jsonl"
    rows = [{"id": f"d{i:02d}", "text": f"document {i}", "year": 2015 + i % 10} for i in range(30)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert runner.invoke(app, ["index", "build", str(source), str(tmp_path / "data" / "c")]).exit_code == 0
    got = json.loads(runner.invoke(app, ["get", str(tmp_path / "data" / "c"), "d03", "nope", "--json"]).stdout)
    assert got == {
        "documents": [{"id": "d03", "text": "document 3", "metadata": {"year": 2018}}],
        "not_found": ["nope"],
    }
    command = ["list", str(tmp_path / "data" / "c"), "--filter", '{"year": {"$gte": 2022}}', "--limit", "5"]
    first = json.loads(runner.invoke(app, [*command, "--json"]).stdout)
    wanted = [r["id"] for r in rows if r["year"] >= 2022]
    assert [d["id"] for d in first["documents"]] == wanted[:5] and first["next_offset"] == 5
    rest = json.loads(runner.invoke(app, [*command, "--offset", "5", "--json"]).stdout)
    assert [d["id"] for d in rest["documents"]] == wanted[5:] and rest["next_offset"] is None
    listed = json.loads(runner.invoke(app, ["collections", str(tmp_path / "data"), "--json"]).stdout)
    assert [(c["name"], c["documents"]) for c in listed["collections"]] == [("c", 30)]
    bad = runner.invoke(app, ["list", str(tmp_path / "data" / "c"), "--filter", "{oops"])
    assert bad.exit_code == 1 and "--filter must be JSON" in bad.output


def test_train_hash_makes_a_model_that_loads(tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text(
        "".join(p["title"] + "\n" for p in json.loads("[" + ",".join(PAPERS.read_text().splitlines()[:300]) + "]"))
    )
    made = runner.invoke(app, ["train-hash", str(tmp_path / "hash"), "--texts", str(texts), "--epochs", "1", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["texts"] == 300
    vectors = nestvec.load_encoder(str(tmp_path / "hash")).encode(["binary codes", "graph search"])
    assert vectors.shape == (2, 384) and np.isfinite(vectors).all()
    missing = runner.invoke(app, ["train-hash", str(tmp_path / "h2"), "--texts", str(tmp_path / "none.txt")])
    assert missing.exit_code == 1 and "no such file" in missing.output and not (tmp_path / "h2").exists()
