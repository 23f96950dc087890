"""Closed registries: a fixed name -> value map whose errors list the valid names."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from nestvec.errors import InputError

V = TypeVar("V")


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    """Error text for a name outside a closed set, with a 'did you mean' hint."""
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Unknown {kind} '{name}'. Valid choices: {', '.join(sorted(valid))}.{hint}"


class Registry(Mapping[str, V], Generic[V]):
    """A read-only name -> value map; lookups of unknown names raise InputError."""

    def __init__(self, kind: str, entries: Mapping[str, V]) -> None:
        self._kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> V:
        try:
            return self._entries[name]
        except KeyError:
            raise InputError(unknown_name_message(self._kind, name, list(self._entries))) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
