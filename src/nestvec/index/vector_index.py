"""VectorIndex: one IndexSpec made real over faiss, with labels, deletions and rescoring."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from nestvec.errors import InputError
from nestvec.index import backend
from nestvec.index.base import SearchResult
from nestvec.index.exact import ExactVectors
from nestvec.index.labels import LabelTable, bitmap
from nestvec.index.spec import IndexSpec
from nestvec.index.spill import Spill

_TRAIN_SAMPLE = 200_000


_NO_LABEL = np.iinfo(np.int64).max  # ranks a missing row last among equal scores


class VectorIndex:
    """Rows are numbered in insertion order; faiss ids are those row numbers.

    Deleted rows stay in flat and HNSW structures as tombstones, skipped through a faiss ID
    selector, until `Collection.compact` rebuilds; IVF lists drop them at once. Codes that
    need training (int8, IVF) keep exact float rows, searched by a scan, until enough arrive.
    """

    def __init__(self, spec: IndexSpec, dim: int, *, expected: int = 0) -> None:
        """`expected`: rows about to be added (a rebuild knows), so IVF sizes its lists for all of
        them rather than for the first batch big enough to train on."""
        if spec.code_dims is not None and spec.code_dims >= dim:
            raise InputError(f"code_dims must be below the vectors' dimension {dim}, got {spec.code_dims}.")
        self.spec, self.dim, self.expected = spec, dim, expected
        self.table = LabelTable()
        self.exact = ExactVectors(dim) if spec.keeps_exact else None
        self.pending = np.empty((0, dim), dtype=np.float32)
        self.faiss: Any = None if spec.train_at() else backend.create(spec, dim, lists=0)
        self.spill: Spill | None = None  # fitted with the lists when spec.spill > 0
        self.mapped = False  # faiss's arrays lie in a checkpoint file (spec.mmap): copied before a write
        self.version = 0  # the store version this index reflects

    def __len__(self) -> int:
        return self.table.alive_count

    @property
    def trained(self) -> bool:
        return self.faiss is not None

    # -- writes ------------------------------------------------------------------------------
    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(labels):
            raise InputError(f"expected {len(labels)} vectors of dimension {self.dim}, got shape {vectors.shape}.")
        if len(vectors) == 0:
            return
        rows = self.table.append(labels)
        if self.exact is not None:
            self.exact.append(vectors)
        if self.faiss is None:
            self.pending = np.concatenate([self.pending, vectors])
            if len(self.pending) >= self.train_at():
                self._train()
        else:
            self._add_codes(rows, vectors)

    def _add_codes(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        codes = backend.encode(self.spec, vectors)
        if self.spec.strategy == "ivf":
            self.faiss.add_with_ids(codes, rows)
            if self.spill is not None:
                self.spill.add(backend.core(self.faiss), backend.project(self.faiss, codes), rows)
        else:
            self._own()
            self.faiss.add(codes)  # sequential ids, equal to the rows since every row is added in order

    def lists(self) -> int:
        """IVF lists in use; 0 for other strategies and before training."""
        if self.faiss is None or self.spec.strategy != "ivf":
            return 0
        return int(backend.core(self.faiss).nlist)

    def train_at(self) -> int:
        """Rows gathered before training: the spec's floor, or with `expected` rows of an IVF
        whose lists are not fixed, enough to train the lists sized for them (39 a list)."""
        floor = self.spec.train_at()
        if not self.expected or self.spec.strategy != "ivf" or self.spec.nlist is not None:
            return floor
        return max(floor, min(self.expected, 39 * self.spec.lists_for(self.expected)))

    def _train(self) -> None:
        sample, held_out = training_rows(len(self.pending), spill=bool(self.spec.spill))
        lists = self.spec.lists_for(max(len(self.pending), self.expected))
        index = backend.create(self.spec, self.dim, lists=lists)
        backend.train(self.spec, index, self.pending[sample])
        if self.spec.spill:
            # Fitted on rows k-means never saw: centroids sit closer to their own training rows,
            # whose gaps would put the threshold too low (15% asked gave 27% of new rows here).
            held = backend.project(index, self.pending[held_out])
            self.spill = Spill.fit(backend.core(index), held, self.spec.spill)
        self.faiss, pending = index, self.pending
        self.pending = np.empty((0, self.dim), dtype=np.float32)
        self._add_codes(np.arange(len(pending), dtype=np.int64), pending)
        self._drop_from_lists(np.flatnonzero(~self.table.alive))

    # -- layout ------------------------------------------------------------------------------
    @property
    def reorderable(self) -> bool:
        """A trained HNSW graph over float or int8 codes: renumbering its rows by cluster speeds
        its searches (index/layout.py); other structures scan their rows or lists in order."""
        return self.spec.strategy == "hnsw" and not self.spec.binary and self.faiss is not None

    def reorder(self) -> None:
        """Renumber the rows so that near vectors sit near each other in memory; searches answer
        the same. Rows appended later follow in insertion order. The caller holds off searches."""
        if self.reorderable and self.table.size >= 2:
            self.renumber(self.cluster_order())

    def cluster_order(self) -> np.ndarray:
        """The rows grouped by k-means cluster (index/layout.py); changes nothing."""
        from nestvec.index import layout

        return layout.cluster_order(self.table.size, self._exact_rows, self.dim)

    def renumber(self, order: np.ndarray) -> None:
        """New row i is row `order[i]`, in the graph, the label table and the float vectors alike."""
        self._own()
        backend.core(self.faiss).permute_entries(order)
        self.table.permute(order)
        if self.exact is not None:
            self.exact = self.exact.permuted(order)

    def _own(self) -> None:
        """Before a write: a mapped index becomes a copy in the process's memory (faiss would abort)."""
        if self.mapped:
            self.faiss, self.mapped = backend.owned(self.spec, self.faiss), False

    def remove(self, labels: np.ndarray) -> None:
        self._drop_from_lists(self.table.kill(np.asarray(labels, dtype=np.int64)))

    def _drop_from_lists(self, rows: np.ndarray) -> None:
        if self.faiss is not None and self.spec.strategy == "ivf" and len(rows):
            removed = self.faiss.remove_ids(np.ascontiguousarray(rows, dtype=np.int64))
            if self.spill is not None:
                self.spill.removed(removed - len(rows))

    # -- search ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> list[SearchResult]:
        """Top-k labels per query, best first; `allowed` restricts hits to those labels."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InputError(f"queries must have shape (n, {self.dim}), got {queries.shape}.")
        if k <= 0 or len(self) == 0 or len(queries) == 0:
            return [SearchResult.empty() for _ in queries]
        rows = None if allowed is None else self.table.positions(allowed)
        if rows is not None and len(rows) == 0:
            return [SearchResult.empty() for _ in queries]
        if self.faiss is None or (rows is not None and len(rows) <= max(4096, self.table.size // 50)):
            # A small filtered subset is cheaper (and exact) to scan than to search through.
            return self._scan(queries, self.table.live_rows() if rows is None else rows, k)
        return self._search_codes(queries, k, rows)

    def _exact_rows(self, rows: np.ndarray) -> np.ndarray:
        if self.faiss is None:
            return self.pending[rows]
        if self.exact is not None:
            return self.exact.get(rows)
        return np.asarray(self.faiss.reconstruct_batch(rows), dtype=np.float32)  # float32 codes are the vectors

    def _scan(self, queries: np.ndarray, rows: np.ndarray, k: int) -> list[SearchResult]:
        scores = queries @ self._exact_rows(rows).T
        found = np.broadcast_to(rows, scores.shape)
        if len(rows) > k:  # keep the k best per query before the exact sort
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            found, scores = rows[part], np.take_along_axis(scores, part, 1)
        return self._top_rows(found, scores, k)

    def _search_codes(self, queries: np.ndarray, k: int, rows: np.ndarray | None) -> list[SearchResult]:
        count = len(self) if rows is None else len(rows)
        want = k * self.spec.rescore if self.spec.rescores else k
        fetch = min(count, want)
        if self.spill is not None:  # a row may come back twice: fetch enough for k distinct ones
            fetch = min(count + self.spill.entries, max(want, 2 * k))
        mask = None
        if rows is not None:
            mask = np.zeros(self.table.size, dtype=bool)
            mask[rows] = True
        elif self.table.dead and self.spec.strategy != "ivf":
            mask = self.table.alive
        found, scores = self._faiss_search(queries, fetch, mask)
        if self.spec.rescores:
            scores = self._rescore(queries, found)
        if self.spill is not None:
            found = _drop_repeats(found, scores)
        return self._top_rows(found, scores, k)

    def _faiss_search(self, queries: np.ndarray, fetch: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        codes = backend.encode(self.spec, queries)
        if mask is None or backend.supports_selector(self.spec):
            selector, bits = None, None
            if mask is not None:
                faiss = backend.faiss_module()
                bits = bitmap(mask)  # must outlive the search: faiss reads it by pointer
                selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
            params = backend.params(self.spec, self.faiss, fetch, selector)
            distances, found = self.faiss.search(codes, fetch, params=params)
            del bits
            return found, backend.scores(self.spec, distances, self.dim)
        return self._post_filtered(codes, fetch, mask)

    def _post_filtered(self, codes: np.ndarray, fetch: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For structures without ID selectors: search wider until each query has `fetch` allowed rows."""
        want = fetch
        while True:
            params = backend.params(self.spec, self.faiss, want, None)
            distances, found = self.faiss.search(codes, want, params=params)
            ok = (found >= 0) & mask[np.maximum(found, 0)]
            if ok.sum(axis=1).min() >= fetch or want >= self.faiss.ntotal:
                break
            want = min(4 * want, int(self.faiss.ntotal))
        scores = backend.scores(self.spec, distances, self.dim)
        out_rows = np.full((len(codes), fetch), -1, dtype=np.int64)
        out_scores = np.full((len(codes), fetch), -np.inf, dtype=np.float32)
        for q in range(len(codes)):
            keep = np.flatnonzero(ok[q])[:fetch]
            out_rows[q, : len(keep)], out_scores[q, : len(keep)] = found[q, keep], scores[q, keep]
        return out_rows, out_scores

    def _rescore(self, queries: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Exact inner products of each query with its candidates' float vectors.

        One gather and one batched matrix product per block of queries; the query is never
        copied per candidate, which would double the memory traffic of the gather.
        """
        out = np.full(found.shape, -np.inf, dtype=np.float32)
        if found.size == 0:
            return out
        fetch = found.shape[1]
        block = max(1, 16_384 // fetch)

        def rescore_block(start: int) -> None:
            part = found[start : start + block]
            valid = part >= 0
            rows = self._exact_rows(np.where(valid, part, 0).ravel()).reshape(len(part), fetch, self.dim)
            scores = np.matmul(rows, queries[start : start + block, :, None])[..., 0]
            out[start : start + block] = np.where(valid, scores, -np.inf)

        starts = range(0, len(found), block)
        if len(starts) == 1:
            rescore_block(0)
            return out
        if self.exact is not None:
            self.exact.tail  # noqa: B018 - joins the pending parts now, before threads read the tail
        # The gathers page-fault on the mapped file and numpy releases the GIL for them and the
        # products: blocks on faiss's thread count (1.6x on 2 cores, 100 candidates × 1,000 queries).
        list(_rescore_pool().map(rescore_block, starts))
        return out

    def _top_rows(self, found: np.ndarray, scores: np.ndarray, k: int) -> list[SearchResult]:
        """The k best of each query's candidates (row -1 = none), best first, ties by label."""
        valid = found >= 0
        everywhere = bool(valid.all())  # the common case skips the masking: a dozen calls on a 1 ms search
        if everywhere:
            labels = self.table.labels[found]
        else:
            labels = np.where(valid, self.table.labels[np.maximum(found, 0)], _NO_LABEL)
            scores = np.where(valid, scores, -np.inf)
        order = np.lexsort((labels, -scores), axis=-1)[:, :k]  # one 2-D sort for the whole batch
        rows = np.arange(len(order))[:, None]
        labels, scores = labels[rows, order], scores[rows, order].astype(np.float32, copy=False)
        counts = [order.shape[1]] * len(order) if everywhere else valid[rows, order].sum(axis=1).tolist()
        return [SearchResult(labels[q, :n], scores[q, :n]) for q, n in enumerate(counts)]

    def decoded(self, labels: np.ndarray) -> np.ndarray:
        """What the stored codes of `labels` decode to (ascending label order), as search scores them."""
        from nestvec.index import codec

        rows = self.table.positions(np.asarray(labels, dtype=np.int64))
        if self.faiss is None or self.spec.codes == "float32":
            return self._exact_rows(rows)
        if self.spec.binary:  # faiss's binary indexes reconstruct one row at a time
            rebuilt = [self.faiss.reconstruct(int(r)) for r in rows]
            bits = np.stack(rebuilt) if rebuilt else np.empty((0, (self.dim + 7) // 8), np.uint8)
            return codec.decode_bits(bits, self.dim)
        stored = np.asarray(self.faiss.reconstruct_batch(rows))
        if self.spec.strategy == "ivf" or self.spec.codes == "rabitq":
            raise InputError(f"decoded vectors exist for flat and hnsw codes, not {self.spec.describe()}.")
        return np.asarray(stored, dtype=np.float32)

    # -- accounting --------------------------------------------------------------------------
    def ram_bytes(self) -> int:
        """Anonymous memory held: codes, graph or lists, labels, untrained rows (not what is mapped from files)."""
        held = self.table.size * 9 + self.pending.nbytes
        if self.exact is not None:
            held += self.exact.nbytes_ram()
        return held + (backend.ram_bytes(self.spec, self.faiss) if self.faiss is not None and not self.mapped else 0)


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _rescore_pool() -> ThreadPoolExecutor:
    """One pool for the rescoring gathers, as wide as faiss's OpenMP threads (its setting rules)."""
    global _POOL
    threads = max(1, int(backend.faiss_module().omp_get_max_threads()))
    if _POOL is None or _POOL[0] != threads:
        _POOL = (threads, ThreadPoolExecutor(threads, thread_name_prefix="nestvec-rescore"))
    return _POOL[1]


def training_rows(count: int, *, spill: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train the codes on, and (for spilled lists) a disjoint tenth to fit the spill on."""
    rng = np.random.default_rng(0)
    if not spill:
        if count <= _TRAIN_SAMPLE:
            return np.arange(count), np.arange(0)
        return np.sort(rng.choice(count, _TRAIN_SAMPLE, replace=False)), np.arange(0)
    order = rng.permutation(count)
    held = max(1, min(count // 10, 20_000))
    return np.sort(order[held : held + _TRAIN_SAMPLE]), np.sort(order[:held])


def _drop_repeats(found: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Rows found through both of their lists, kept once (at the better score); the rest -1."""
    order = np.lexsort((-scores, found), axis=-1)  # by row, best score first within a row
    ranked = np.take_along_axis(found, order, 1)
    repeat = np.zeros(found.shape, dtype=bool)
    repeat[:, 1:] = (ranked[:, 1:] == ranked[:, :-1]) & (ranked[:, 1:] >= 0)
    out = found.copy()
    np.put_along_axis(out, order, np.where(repeat, -1, ranked), 1)
    return out
