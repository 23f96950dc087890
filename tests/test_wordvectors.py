"""Word-vector files: word2vec text/binary, GloVe and fastText .vec fixtures written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nestvec
from nestvec.cli.main import app
from nestvec.encoders.wordvectors import WordVectors, convert
from nestvec.errors import InputError, InputFileError

GROUPS = {
    "animals": ["cat", "dog", "elephant", "giraffe", "horse", "tiger", "zebra", "kitten"],
    "colors": ["red", "green", "blue", "yellow", "purple", "orange", "violet", "crimson"],
    "numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight"],
}
DIM = 16


def _vocabulary() -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(GROUPS), DIM)) * 3
    words, rows = [], []
    for centre, members in zip(centres, GROUPS.values(), strict=True):
        for word in members:
            words.append(word)
            rows.append(centre + rng.normal(size=DIM) * 0.5)
    words.append("Paris")  # cased, as in word2vec files
    rows.append(rng.normal(size=DIM))
    return words, np.asarray(rows, dtype=np.float32)


def _write(path: Path, fmt: str) -> Path:
    words, vectors = _vocabulary()
    if fmt == "binary":
        with path.open("wb") as fh:
            fh.write(f"{len(words)} {DIM}\n".encode())
            for word, row in zip(words, vectors, strict=True):
                fh.write(word.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
        return path
    lines = [f"{w} " + " ".join(f"{x:.6f}" for x in row) for w, row in zip(words, vectors, strict=True)]
    header = [] if fmt == "glove" else [f"{len(words)} {DIM}"]
    path.write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wv")
    return convert(_write(root / "vectors.txt", "text"), root / "converted")


@pytest.mark.parametrize("fmt", ["text", "binary", "glove", "vec"])
def test_every_format_converts_to_the_same_vectors(tmp_path: Path, fmt: str) -> None:
    source = _write(tmp_path / f"v.{fmt}", fmt)
    converted = WordVectors(convert(source, tmp_path / "out"))
    words, vectors = _vocabulary()
    assert converted.count == len(words) and converted.dim == DIM
    rows = [converted.row(w) for w in words]
    assert rows == list(range(len(words)))
    np.testing.assert_allclose(np.asarray(converted.vectors), vectors, atol=1e-5)
    assert converted.config["source_format"] == ("text" if fmt == "vec" else fmt)


def test_lookups_neighbours_and_unknown_words(folder: Path) -> None:
    vectors = WordVectors(folder)
    assert "cat" in vectors and "Paris" in vectors and "CAT" in vectors  # as written, then lowercased
    assert "paris" not in vectors
    assert vectors.row("unicorn") is None
    neighbours = {w for w, _ in vectors.most_similar("cat", k=5)}
    assert neighbours <= set(GROUPS["animals"]) and "cat" not in neighbours
    typo = vectors.vector("elephnt")  # unknown: built from character n-grams of known words
    assert typo.any()
    best = [w for w, _ in vectors.most_similar(typo, k=3)]
    assert set(best) <= set(GROUPS["animals"]), best


def test_sentence_encoding_is_a_normalized_mean(folder: Path) -> None:
    vectors = WordVectors(folder)
    out = vectors.encode(["red green", "one two three", "", "cat!"])
    assert out.shape == (4, DIM)
    mean = np.asarray(vectors.vectors[[vectors.row("red"), vectors.row("green")]]).mean(0)
    np.testing.assert_allclose(out[0], mean / np.linalg.norm(mean), atol=1e-6)
    assert not out[2].any()
    assert float(out[0] @ vectors.encode(["blue yellow"])[0]) > float(out[0] @ out[1])
    weighted = WordVectors(folder, sif=1e-3).encode(["red green"])[0]
    assert np.linalg.norm(weighted) == pytest.approx(1.0) and not np.allclose(weighted, out[0])
    assert isinstance(nestvec.load_encoder(folder), WordVectors)


def test_bad_files_name_the_line_and_leave_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(f"2 {DIM}\ncat " + " ".join(["0.1"] * DIM) + "\ndog 0.1 0.2\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"bad.txt:3: expected a word and 16 numbers, found 2"):
        convert(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    nan = tmp_path / "nan.txt"
    nan.write_text(f"2 {DIM}\ncat " + " ".join(["0.1"] * DIM) + "\ndog nan" + " 0.1" * (DIM - 1) + "\n")
    with pytest.raises(InputFileError, match=r"nan\.txt:3: the vector of 'dog' holds nan; every value must be finite"):
        convert(nan, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    with pytest.raises(InputFileError, match="Unknown word-vector format"):
        convert(bad, tmp_path / "out", fmt="fasttext-bin")
    with pytest.raises(InputError, match="already exists"):
        convert(_write(tmp_path / "ok.txt", "text"), tmp_path)


def test_a_declared_format_is_checked_against_the_content(tmp_path: Path) -> None:
    text, binary = _write(tmp_path / "t.txt", "text"), _write(tmp_path / "b.bin", "binary")
    with pytest.raises(InputFileError, match="--format binary, but the rows after the header are text"):
        convert(text, tmp_path / "out", fmt="binary")
    for fmt in ("glove", "text"):
        with pytest.raises(InputFileError, match=f"--format {fmt}, but the rows are binary"):
            convert(binary, tmp_path / "out", fmt=fmt)
    assert not (tmp_path / "out").exists()
    done = CliRunner().invoke(app, ["vectors", "convert", str(binary), str(tmp_path / "o"), "--format", "glove"])
    assert done.exit_code == 1 and "rows are binary" in done.output and "Traceback" not in done.output


def test_cli_convert_and_similar(tmp_path: Path) -> None:
    source = _write(tmp_path / "v.txt", "glove")
    runner = CliRunner()
    assert runner.invoke(app, ["vectors", "convert", str(source), str(tmp_path / "c")]).exit_code == 0
    result = runner.invoke(app, ["vectors", "similar", str(tmp_path / "c"), "red", "-k", "3", "--json"])
    assert result.exit_code == 0 and '"word": "red"' in result.output
    assert runner.invoke(app, ["vectors", "convert", str(tmp_path / "missing.txt"), str(tmp_path / "d")]).exit_code == 1
