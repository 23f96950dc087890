"""Transforms: vectors -> vectors or codes. Pure: `fit` returns a new fitted object.

Every transform saves as a folder: config.json (kind, format_version, parameters, the sha256
of the tensors file) plus its fitted tensors in tensors.safetensors. Nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from nestvec.errors import InputError
from nestvec.files import config_header, hash_file, read_config, write_json_atomic

TENSORS = "tensors.safetensors"


@runtime_checkable
class Transform(Protocol):
    name: ClassVar[str]

    @property
    def fitted(self) -> bool: ...

    def fit(self, vectors: np.ndarray) -> Transform: ...

    def apply(self, vectors: np.ndarray) -> np.ndarray: ...

    def params(self) -> dict[str, Any]: ...

    def tensors(self) -> dict[str, np.ndarray]: ...

    def output_dim(self, dim: int) -> int: ...

    def bytes_per_vector(self, dim: int) -> int:
        """Bytes of one output vector for an input of `dim` dimensions."""
        ...


def check_vectors(vectors: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[0] == 0:
        raise InputError(f"{what} expects a non-empty 2-D array (n, dim), got shape {array.shape}.")
    return np.ascontiguousarray(array, dtype=np.float32)


def require_fitted(transform: Transform) -> None:
    if not transform.fitted:
        raise InputError(
            f"The {transform.name} transform is not fitted; call fit(sample) first (it returns the fitted copy)."
        )


def save(transform: Transform, folder: str | Path) -> Path:
    from safetensors.numpy import save_file

    require_fitted(transform)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    tensors = transform.tensors()
    config = {**config_header("transform"), "name": transform.name, "params": transform.params()}
    if tensors:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(target / TENSORS))
        config["tensors_sha256"] = hash_file(target / TENSORS).hexdigest()
    write_json_atomic(target / "config.json", config)
    return target


def load(folder: str | Path) -> Transform:
    from safetensors.numpy import load_file

    from nestvec.transforms import TRANSFORMS

    source = Path(folder)
    config = read_config(source, "transform")
    cls: Any = TRANSFORMS[str(config.get("name"))]
    recorded = config.get("tensors_sha256")
    tensors = load_file(str(_checked(source, recorded))) if recorded or (source / TENSORS).exists() else {}
    try:
        return cls.restore(dict(config.get("params", {})), tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{source} does not hold a saved {config.get('name')} transform ({exc!r}).") from exc


def _checked(folder: Path, sha256: object) -> Path:
    """The tensors file, once it matches the digest its config recorded (configs before 0.3 have none)."""
    path = folder / TENSORS
    if sha256 is not None and not path.is_file():
        raise InputError(f"{path} is missing; its config.json records one. Restore it, or fit the transform again.")
    if sha256 is not None and hash_file(path).hexdigest() != sha256:
        raise InputError(
            f"{path} does not match the sha256 its config.json recorded: the file was changed or damaged. "
            "Restore it, or fit the transform again."
        )
    return path
