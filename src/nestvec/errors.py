"""Exception types. Every message says what was expected, what was found and how to fix it."""

from __future__ import annotations


class NestvecError(Exception):
    """Base class of every error nestvec raises on purpose."""


class ModelError(NestvecError):
    """A model folder or name cannot be loaded."""


class MissingExtraError(NestvecError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'nestvec[{extra}]'"
        )


class InputError(NestvecError, ValueError):
    """Documents, queries or options that cannot be used as given."""


class InputFileError(InputError):
    """A record in an input file is malformed; names the file and line."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class CollectionError(NestvecError):
    """A collection folder is missing, corrupt or used inconsistently."""


class CollectionGoneError(CollectionError):
    """The collection's folder was removed or replaced while it was open; nothing was written."""


class RecipeMismatchError(CollectionError):
    """A query or document would be embedded differently from the collection's documents."""


class DuplicateIdError(InputError):
    """Ids repeated in one batch, or already present for a plain add."""


class IndexCorruptError(CollectionError):
    """A saved index failed its checksums; collections rebuild it from the durable store."""
