"""Vectors for `nestvec add --vectors`: a .npy matrix in the input's record order, or a .parquet
file of (id, embedding) rows, as `nestvec embed` writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nestvec.errors import InputFileError, MissingExtraError


class VectorFile:
    """The vector of each record, by its position in the input (.npy) or its id (.parquet)."""

    def __init__(self, path: Path, ids: list[str]) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if not self.path.is_file():
            raise InputFileError(self.path, None, "no such file.")
        if suffix == ".npy":
            self.matrix = _npy(self.path)
            self.row = {i: n for n, i in enumerate(ids)}
        elif suffix == ".parquet":
            self.matrix, found = _parquet(self.path)
            self.row = {i: n for n, i in enumerate(found)}
        else:
            raise InputFileError(self.path, None, f"vectors come as .npy or .parquet (id, embedding), not {suffix!r}.")
        if suffix == ".npy" and len(self.matrix) != len(ids):
            raise InputFileError(
                self.path,
                None,
                f"{len(self.matrix)} vectors for {len(ids)} records; give one row per record, in order.",
            )
        missing = [i for i in ids if i not in self.row]
        if missing:
            raise InputFileError(self.path, None, f"no vector for id {missing[0]!r} ({len(missing)} ids lack one).")

    def rows(self, ids: list[str]) -> np.ndarray:
        return np.asarray(self.matrix[[self.row[i] for i in ids]], dtype=np.float32)


def _npy(path: Path) -> np.ndarray:
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputFileError(path, None, f"not a readable .npy matrix ({exc}).") from exc
    if matrix.ndim != 2:
        raise InputFileError(path, None, f"expected a 2-D matrix (records × dims), found shape {matrix.shape}.")
    return matrix


def _parquet(path: Path) -> tuple[np.ndarray, list[str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingExtraError("pyarrow", "parquet", "Reading .parquet vectors") from exc
    try:
        table = pq.read_table(path, columns=["id", "embedding"])
    except Exception as exc:  # pyarrow's ArrowInvalid and friends
        raise InputFileError(path, None, f"expected columns id and embedding ({exc}).") from exc
    ids = [str(i) for i in table.column("id").to_pylist()]
    column = table.column("embedding").combine_chunks()
    matrix = np.asarray(column.flatten(), dtype=np.float32).reshape(len(ids), -1) if len(ids) else np.zeros((0, 0))
    return matrix, ids
