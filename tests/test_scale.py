"""Ray Data embedding into Parquet shards: equal to single-process nestvec, resumable, and
ingested into collections without the model. A real local Ray runtime, real MiniLM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError, MissingExtraError, RecipeMismatchError
from nestvec.recipe import Recipe
from nestvec.scale import ScaleOptions, embed_shards, ingest_shards
from nestvec.scale.ingest import build_from_shards
from nestvec.scale.plan import ReadOptions
from tests.conftest import papers
from tests.ray_faults import finished, kill_an_actor

ray = pytest.importorskip("ray", reason="Ray jobs need the 'ray' extra")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def runtime() -> object:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three formats: JSONL, CSV with quoted newlines inside fields, and plain text."""
    folder = tmp_path_factory.mktemp("inputs")
    rows = papers(90)
    (folder / "a.jsonl").write_text("".join(json.dumps({"id": p["id"], "text": p["title"]}) + "\n" for p in rows[:60]))
    lines = ["id,text,year"] + [
        f'c{i},"{p["title"]}\nsecond line, with a comma",{2000 + i}' for i, p in enumerate(rows[60:])
    ]
    (folder / "b.csv").write_text("\n".join(lines) + "\n")
    return folder


def _vectors(folder: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(folder)
    matrix = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(table.num_rows, -1)
    ids = table.column("id").to_pylist()
    assert len(ids) == len(set(ids)), "an id was written twice"
    return dict(zip(ids, matrix, strict=True))


def _expected(inputs: Path) -> dict[str, np.ndarray]:
    from nestvec.io.readers import RecordReader

    records = [r for name in ("a.jsonl", "b.csv") for r in RecordReader(inputs / name)]
    vectors = nestvec.load_encoder("minilm").encode([r.text for r in records])
    return {r.id: v for r, v in zip(records, vectors, strict=True)}


def test_shards_equal_single_process_and_a_rerun_skips_them(runtime: object, inputs: Path, tmp_path: Path) -> None:
    options = ScaleOptions(rows=16, actors=2, progress=False)
    report = embed_shards([inputs], tmp_path / "out", recipe=Recipe.make(), read=ReadOptions(), options=options)
    assert (report.shards, report.skipped, report.rows, report.dim) == (6, 0, 90, 384)
    got, expected = _vectors(tmp_path / "out"), _expected(inputs)
    assert sorted(got) == sorted(expected)
    assert max(float(np.abs(got[i] - v).max()) for i, v in expected.items()) < 1e-6
    row = pq.read_table(tmp_path / "out").to_pylist()[-1]
    assert "\nsecond line, with a comma" in row["text"] and json.loads(row["metadata"]) == {
        "year": 2029
    }  # typed from the whole CSV
    again = embed_shards([inputs], tmp_path / "out", recipe=Recipe.make(), read=ReadOptions(), options=options)
    assert again.skipped == 6 and again.rows == 90
    with pytest.raises(InputError, match="another job"):  # other shard size: another plan
        embed_shards([inputs], tmp_path / "out", recipe=Recipe.make(), read=ReadOptions(), options=ScaleOptions(rows=7))


def test_a_killed_actor_loses_no_id_and_writes_none_twice(runtime: object, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done: dict[str, object] = {}

    def job() -> None:
        options = ScaleOptions(rows=4, actors=2, progress=False)
        done["report"] = embed_shards([inputs], out, recipe=Recipe.make(), read=ReadOptions(), options=options)

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 120
    while not finished(out) and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = kill_an_actor() is not None
    thread.join(timeout=300)
    assert killed and not thread.is_alive() and done["report"].rows == 90  # type: ignore[attr-defined]
    assert sorted(_vectors(out)) == sorted(_expected(inputs))


def test_a_killed_driver_resumes_from_its_finished_shards(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nestvec.cli.main", "embed", str(inputs), str(out), "--ray", "local"]
    command += ["--shard-rows", "5", "--actors", "1", "--no-progress"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while finished(out) < 3 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = finished(out)
    assert 3 <= before < 18
    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert report["skipped"] >= before - 1 and report["rows"] == 90 and report["shards"] == 18
    got, expected = _vectors(out), _expected(inputs)
    assert sorted(got) == sorted(expected)
    assert max(float(np.abs(got[i] - v).max()) for i, v in expected.items()) < 1e-6


def test_ingest_stores_the_shards_without_the_model_and_checks_their_recipe(
    runtime: object, inputs: Path, tmp_path: Path
) -> None:
    shards = tmp_path / "shards"
    embed_shards(
        [inputs], shards, recipe=Recipe.make(), read=ReadOptions(), options=ScaleOptions(rows=30, progress=False)
    )
    report = build_from_shards(shards, tmp_path / "c", recipe=Recipe.make())
    assert report.added == 90
    with nestvec.Collection.create(tmp_path / "ref") as reference:
        from nestvec.io.ingest import add_file
        from nestvec.io.readers import RecordReader

        for name in ("a.jsonl", "b.csv"):
            add_file(reference, RecordReader(inputs / name))
        with nestvec.Collection.open(tmp_path / "c") as built:
            for query in ("binary embeddings", "second line"):
                assert [h.id for h in built.search(query, k=5)] == [h.id for h in reference.search(query, k=5)]
            with pytest.raises(nestvec.DuplicateIdError):
                ingest_shards(built, shards)
            assert built.count() == 90
    with nestvec.Collection.create(tmp_path / "other", model="minilm", layers=3) as other:
        with pytest.raises(RecipeMismatchError, match="another model"):
            ingest_shards(other, shards)
        assert other.count() == 0
    codes = tmp_path / "int8"
    options = ScaleOptions(rows=30, store_as="int8", progress=False)
    embed_shards([inputs], codes, recipe=Recipe.make(), read=ReadOptions(), options=options)
    assert pq.read_table(codes).schema.field("embedding").type.value_type == "int8"
    with pytest.raises(InputError, match="store-as float32"):
        build_from_shards(codes, tmp_path / "c8", recipe=Recipe.make())
    assert not (tmp_path / "c8").exists()


def test_bad_input_fails_before_ray_starts(inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "fine"}\n{"id": "1", "text": "again"}\n')
    with pytest.raises(nestvec.errors.InputFileError, match=r"bad.jsonl:2: .*repeats the id"):
        embed_shards([bad], tmp_path / "o", recipe=Recipe.make(), read=ReadOptions(), options=ScaleOptions())
    command = [sys.executable, "-m", "nestvec.cli.main", "embed", str(inputs), str(tmp_path / "o"), "--ray"]
    unreachable = subprocess.run([*command, "127.0.0.1:9"], capture_output=True, text=True, timeout=120)
    assert unreachable.returncode == 1 and "Could not reach a Ray cluster at '127.0.0.1:9'" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(MissingExtraError, match=r"nestvec\[ray\]"):
        embed_shards([inputs], tmp_path / "o", recipe=Recipe.make(), read=ReadOptions(), options=ScaleOptions())
    assert not (tmp_path / "o").exists()
