"""2 MB pages under a loaded index's largest arrays, where Linux gives them.

An HNSW search hops between random nodes of a graph and a code array hundreds of megabytes
long; on 4 KB pages nearly every hop misses the TLB, and under a hypervisor each miss walks two
page tables. Linux's transparent huge pages are, by the common default (`madvise`), given only
to memory that asks, and faiss allocates its arrays itself, so once an index is in memory its
arrays' aligned interiors ask (MADV_HUGEPAGE, so they keep them if they are moved) and are
collapsed in place (MADV_COLLAPSE, Linux 6.1+). The collapse copies the pages (seconds per
GB), so it runs on a thread of its own and searches go on meanwhile; the contents never
change. Where the kernel declines (another OS, THP off, an older kernel) nothing changes.
On 1M MiniLM vectors (HNSW32, int8 codes) faiss's own search went from 0.43-0.44 to 0.37 ms
p50 (bench/results/search-overhead-session28.json; docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
MIN_BYTES = 8 * HUGE_PAGE  # smaller arrays fit the TLB's reach anyway: not worth a thread
THREAD_NAME = "nestvec-hugepages"

Span = tuple[int, int]  # (address, bytes)


def advise(index: Any) -> threading.Thread | None:
    """Start collapsing `index`'s arrays into huge pages; the thread, or None when there is nothing to do."""
    if not sys.platform.startswith("linux") or index is None:
        return None
    spans = [s for s in _aligned(arrays(index)) if s[1] >= HUGE_PAGE]
    if sum(size for _, size in spans) < MIN_BYTES:
        return None
    # The thread holds `index`, so the arrays outlive the calls that name their addresses.
    thread = threading.Thread(target=collapse, args=(spans, index), name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def wait() -> None:
    """Return once every collapse started so far is done (benchmarks time the steady state)."""
    for thread in threading.enumerate():
        if thread.name == THREAD_NAME:
            thread.join()


def arrays(index: Any) -> list[Span]:
    """(address, bytes) of the codes and the graph links of a flat or HNSW faiss index.

    IVF lists are many separate small arrays: there is nothing 2 MB-aligned to ask for.
    """
    import faiss

    def downcast(it: Any) -> Any:
        return faiss.downcast_IndexBinary(it) if isinstance(it, faiss.IndexBinary) else faiss.downcast_index(it)

    found: list[Any] = []
    index = downcast(index)
    if hasattr(index, "hnsw"):
        found.append(index.hnsw.neighbors)
        index = downcast(index.storage)
    for name in ("codes", "xb"):
        vector = getattr(index, name, None)
        if vector is not None and hasattr(vector, "c_ptr"):
            found.append(vector)
    return [(int(v.c_ptr), int(v.byte_size())) for v in found if v.byte_size()]


def collapse(spans: list[Span], owner: Any = None) -> int:
    """Ask for and collapse huge pages over `spans` (already aligned); returns the bytes collapsed."""
    madvise = _madvise()
    if madvise is None:
        return 0
    done = 0
    for address, size in spans:
        madvise(address, size, MADV_HUGEPAGE)
        if madvise(address, size, MADV_COLLAPSE) == 0:
            done += size
        else:
            log.debug("MADV_COLLAPSE declined (errno %d): this index keeps 4 KB pages", ctypes.get_errno())
    return done


def _aligned(spans: list[Span]) -> list[Span]:
    out = []
    for address, size in spans:
        lo = -(-address // HUGE_PAGE) * HUGE_PAGE
        hi = (address + size) // HUGE_PAGE * HUGE_PAGE
        out.append((lo, max(0, hi - lo)))
    return out


def _madvise() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function
