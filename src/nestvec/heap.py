"""Handing the heap's freed pages back to the OS after a large transient build.

glibc keeps freed memory in its heap for reuse, and after one large free it raises the size
under which allocations come from that heap (up to 32 MB), so the tuples and partial arrays a
one-off build leaves behind (the hit rows of a million chunks, a checkpoint's files read) stay
resident, counted as the process's memory. `release()` returns them (glibc's malloc_trim); on
other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from typing import Any


def release() -> bool:
    """Return freed heap pages to the OS; whether the C library could."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function
