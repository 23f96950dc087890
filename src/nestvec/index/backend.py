"""The faiss structures behind each IndexSpec, and the per-query search parameters they take."""

from __future__ import annotations

from typing import Any

import numpy as np

from nestvec.index.spec import IndexSpec

_SQ = {"float16": "SQfp16", "int8": "SQ8"}


def faiss_module() -> Any:
    import faiss

    return faiss


def create(spec: IndexSpec, dim: int, *, lists: int) -> Any:
    """A new, empty faiss index; `lists` is the IVF list count (ignored by other strategies)."""
    faiss = faiss_module()
    if spec.code_dims is not None:
        # Untrained until train() sets the projection from the data.
        projection = faiss.LinearTransform(dim, spec.code_dims, False)
        return faiss.IndexPreTransform(projection, _rabitq(faiss, spec, spec.code_dims, lists))
    if spec.binary:
        if spec.strategy == "flat":
            return faiss.IndexBinaryFlat(dim)
        if spec.strategy == "hnsw":
            index = faiss.IndexBinaryHNSW(dim, spec.hnsw_m)
            index.hnsw.efConstruction = spec.ef_construction
            return index
        return faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(dim), dim, lists)
    if spec.codes == "rabitq":
        return _rabitq(faiss, spec, dim, lists)
    codes = "Flat" if spec.codes == "float32" else _SQ[spec.codes]
    key = {"flat": codes, "hnsw": f"HNSW{spec.hnsw_m}" + ("" if codes == "Flat" else f"_{codes}")}
    key["ivf"] = f"IVF{lists},{codes}"
    index = faiss.index_factory(dim, key[spec.strategy], faiss.METRIC_INNER_PRODUCT)
    if spec.strategy == "hnsw":
        index.hnsw.efConstruction = spec.ef_construction
    if spec.codes == "int8":
        # Per-dimension ranges from quantiles, not min/max, so one outlier can't waste the 256 levels.
        sq = (faiss.downcast_index(index.storage) if spec.strategy == "hnsw" else index).sq
        sq.rangestat = faiss.ScalarQuantizer.RS_quantiles
        sq.rangestat_arg = 0.001
    return index


def _rabitq(faiss: Any, spec: IndexSpec, dim: int, lists: int) -> Any:
    if spec.strategy == "flat":
        index = faiss.IndexRaBitQ(dim, faiss.METRIC_INNER_PRODUCT)
    else:
        # Float centroids (lists follow the real geometry, unlike binary k-means) over fast-scan
        # blocks of codes: 1.3-1.6x the plain IVF-RaBitQ scan at nprobe 64 of 1,024 lists in one
        # sweep on 1M MiniLM vectors here (bench/search.py's data), same recall.
        index = faiss.IndexIVFRaBitQFastScan(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
    index.qb = 8  # the query's own quantization: 8 bits keep its estimates close to float
    return index


def train(spec: IndexSpec, index: Any, sample: np.ndarray) -> None:
    """Train the codes (and first the projection, for code_dims) on float32 `sample` rows."""
    if spec.code_dims is not None:
        # Top eigenvectors of the uncentered second moment (a centered PCA would rank by
        # <q - m, x - m>, which differs from <q, x> by a term that depends on x), then a random
        # rotation: RaBitQ's sign bits assume no coordinate dominates, and PCA's first ones do.
        faiss = faiss_module()
        _, vectors = np.linalg.eigh(sample.T.astype(np.float64) @ sample / len(sample))
        top = vectors[:, ::-1][:, : spec.code_dims].T
        rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.code_dims, spec.code_dims)))
        matrix = np.ascontiguousarray(rotation @ top, dtype=np.float32)
        projection = faiss.downcast_VectorTransform(index.chain.at(0))
        faiss.copy_array_to_vector(matrix.ravel(), projection.A)
        faiss.copy_array_to_vector(np.zeros(spec.code_dims, dtype=np.float32), projection.b)
        projection.is_trained = True
    if spec.codes in _SQ:
        # faiss trains scalar-quantizer ranges with a data race: on several threads the same sample
        # gave ranges up to 0.016 apart from run to run here. One thread makes codes reproducible
        # (a collection and `eval --compare codes=int8` agree exactly); it costs milliseconds.
        threads = faiss_module().omp_get_max_threads()
        faiss_module().omp_set_num_threads(1)
        try:
            index.train(encode(spec, sample))
        finally:
            faiss_module().omp_set_num_threads(threads)
        return
    index.train(encode(spec, sample))


def core(index: Any) -> Any:
    """The coding index itself: inside the projection for code_dims, else `index`."""
    if isinstance(index, faiss_module().IndexPreTransform):
        return faiss_module().downcast_index(index.index)
    return index


def project(index: Any, vectors: np.ndarray) -> np.ndarray:
    """`vectors` as core(index) sees them."""
    if isinstance(index, faiss_module().IndexPreTransform):
        return np.ascontiguousarray(index.chain.at(0).apply(vectors), dtype=np.float32)
    return vectors


def encode(spec: IndexSpec, vectors: np.ndarray) -> np.ndarray:
    """What faiss takes: packed sign bits for binary codes, float32 rows otherwise."""
    if spec.binary:
        return np.packbits(vectors > 0, axis=1)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def scores(spec: IndexSpec, distances: np.ndarray, dim: int) -> np.ndarray:
    """Higher is better: inner products, or 1 - 2·hamming/dim (the cosine of the sign vectors)."""
    if spec.binary:
        return (1.0 - 2.0 * distances.astype(np.float32) / dim).astype(np.float32)
    return distances.astype(np.float32, copy=False)


def supports_selector(spec: IndexSpec) -> bool:
    return not (spec.binary and spec.strategy == "ivf")


def params(spec: IndexSpec, index: Any, fetch: int, selector: Any | None) -> Any | None:
    faiss = faiss_module()
    kw: dict[str, Any] = {} if selector is None else {"sel": selector}
    if spec.strategy == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=max(spec.ef_search, fetch), **kw)
    if spec.strategy == "ivf":
        inner = faiss.SearchParametersIVF(nprobe=spec.nprobe or max(1, core(index).nlist // 16), **kw)
    else:
        inner = faiss.SearchParameters(**kw) if kw else None
    if spec.code_dims is not None and inner is not None:
        return faiss.SearchParametersPreTransform(index_params=inner)
    return inner


def serialize(spec: IndexSpec, index: Any) -> bytes:
    faiss = faiss_module()
    data = faiss.serialize_index_binary(index) if spec.binary else faiss.serialize_index(index)
    return bytes(data)


def deserialize(spec: IndexSpec, data: bytes) -> Any:
    faiss = faiss_module()
    array = np.frombuffer(data, dtype=np.uint8)
    return faiss.deserialize_index_binary(array) if spec.binary else faiss.deserialize_index(array)


def read_mapped(path: str) -> Any:
    """The faiss index saved at `path`, its codes and graph left in the file (mapped, read-only).

    Such an index must never be written to: faiss aborts the process on a write to a mapped
    array. VectorIndex copies it into owned memory (`owned`) before its first write.
    """
    faiss = faiss_module()
    return faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC)


def owned(spec: IndexSpec, index: Any) -> Any:
    """A copy of `index` in the process's own memory, which writes may change."""
    return deserialize(spec, serialize(spec, index))


def ram_bytes(spec: IndexSpec, index: Any) -> int:
    """Memory of the codes plus the graph links or the list ids (and the projection, if any)."""
    held = 0 if index is core(index) else 4 * int(index.d) * int(core(index).d)
    index = core(index)
    code = index.code_size if spec.strategy != "hnsw" else spec.bytes_per_code(index.d)
    held += int(index.ntotal) * int(code)
    if spec.strategy == "hnsw":
        held += int(index.hnsw.neighbors.size()) * 4 + int(index.hnsw.levels.size()) * 4
    if spec.strategy == "ivf":
        centroid = 4 * int(index.d) if spec.codes == "rabitq" else int(code)
        held += int(index.ntotal) * 8 + int(index.nlist) * centroid
    return held
