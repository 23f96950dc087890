"""VectorIndex over every strategy × precision: recall against exact search, deletes, filters, checkpoints."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nestvec.errors import IndexCorruptError, InputError
from nestvec.index import checkpoint
from nestvec.index.spec import CODES, STRATEGIES, UNSUPPORTED, IndexSpec
from nestvec.index.vector_index import VectorIndex

SPECS = [
    IndexSpec.make(s, p, nlist=16, nprobe=16)
    for s, p in itertools.product(STRATEGIES, CODES)
    if (s, p) not in UNSUPPORTED
] + [
    IndexSpec.make("ivf", "float32", nlist=16, nprobe=16, spill=30),
    IndexSpec.make("ivf", "rabitq", nlist=16, nprobe=16, spill=30),
    IndexSpec.make("ivf", "rabitq", nlist=16, nprobe=16, spill=100, code_dims=32),
    IndexSpec.make("flat", "rabitq", rescore=10, code_dims=32),
]


def clustered(n: int, dim: int = 48, seed: int = 0) -> np.ndarray:
    """Unit vectors on a 4-dimensional curved manifold plus noise: neighbours are meaningful,
    as in real embeddings (isotropic Gaussian points have none, and sign bits find nothing)."""
    mix = np.random.default_rng(0).normal(size=(4, dim))
    rng = np.random.default_rng(seed)
    x = np.tanh(rng.normal(size=(n, 4)) @ mix) + 0.05 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def wide(n: int, seed: int) -> np.ndarray:
    """Unit vectors of 128 dims on a 16-dimensional curved manifold: RaBitQ's estimates sharpen
    with the width (error ~ 1/sqrt(dim)), so its tests use real models' widths."""
    mix = np.random.default_rng(0).normal(size=(16, 128)) / 4
    x = np.tanh(np.random.default_rng(seed).normal(size=(n, 16)) @ mix)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    scores = queries @ vectors.T
    return [set(labels[np.argsort(-row)[:k]].tolist()) for row in scores]


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(f & t) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_every_index_finds_true_neighbours_and_forgets_deleted(spec: IndexSpec) -> None:
    vectors = clustered(12_000)
    labels = np.arange(10, 12_010, dtype=np.int64)  # labels are not row numbers
    queries = clustered(50, seed=1)
    index = VectorIndex(spec, 48)
    for start in range(0, 12_000, 2_500):  # batches: int8 and IVF train once enough rows arrived
        index.add(labels[start : start + 2_500], vectors[start : start + 2_500])
    assert index.trained and len(index) == 12_000
    found = [set(r.labels.tolist()) for r in index.search(queries, 10)]
    # Sign-bit codes (Hamming or RaBitQ) of 48-dimensional vectors keep little order on their own.
    coarse = spec.codes in ("binary", "rabitq")
    floor = {(True, False): 0.15, (True, True): 0.6}.get((coarse, spec.rescores), 0.85)
    assert recall(found, exact_top(vectors, labels, queries, 10)) >= floor

    gone = np.unique(np.concatenate([r.labels for r in index.search(queries, 3)]))
    index.remove(gone)
    keep = ~np.isin(labels, gone)
    results = index.search(queries, 10)
    assert not set(np.concatenate([r.labels for r in results]).tolist()) & set(gone.tolist())
    assert len(index) == 12_000 - len(gone)
    assert (
        recall([set(r.labels.tolist()) for r in results], exact_top(vectors[keep], labels[keep], queries, 10)) >= floor
    )
    for result in results:
        assert np.all(np.diff(result.scores) <= 1e-6)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_filters_return_only_allowed_labels_and_still_k(spec: IndexSpec) -> None:
    vectors = clustered(12_000, seed=2)
    labels = np.arange(12_000, dtype=np.int64)
    index = VectorIndex(spec, 48)
    index.add(labels, vectors)
    queries = clustered(5, seed=3)
    small = labels[::100]  # 120 rows: scanned exactly
    large = labels[labels % 3 == 0]  # 4,000 rows of 12,000: searched through the codes with a selector
    for allowed in (small, large):
        for result in index.search(queries, 10, allowed=allowed):
            assert len(result) == 10 and set(result.labels.tolist()) <= set(allowed.tolist())
    small_truth = exact_top(vectors[small], small, queries, 10)
    small_found = [set(r.labels.tolist()) for r in index.search(queries, 10, allowed=small)]
    assert small_found == small_truth


@pytest.mark.parametrize("strategy", ["flat", "ivf"])
def test_rabitq_codes_rank_better_than_hamming_on_the_same_bits(strategy: str) -> None:
    vectors, queries = wide(12_000, seed=7), wide(50, seed=8)
    labels = np.arange(12_000, dtype=np.int64)
    truth = exact_top(vectors, labels, queries, 10)
    got = {}
    for precision in ("binary", "rabitq"):
        index = VectorIndex(IndexSpec.make(strategy, precision, rescore=0, nlist=16, nprobe=16), 128)
        index.add(labels, vectors)
        got[precision] = recall([set(r.labels.tolist()) for r in index.search(queries, 10)], truth)
    # The float query against rotated sign bits estimates inner products; Hamming between two
    # sign vectors throws the query's magnitudes away.
    # IVF codes encode residuals to 16 centroids of this small set, and the fast scan quantizes
    # the query's lookup tables: the margin there is smaller (on real MiniLM vectors, see README).
    assert got["rabitq"] >= got["binary"] + {"flat": 0.1, "ivf": 0.03}[strategy], got


def test_rabitq_codes_refuse_hnsw_and_say_what_works() -> None:
    with pytest.raises(InputError, match="rabitq codes work with strategy 'flat' or 'ivf'"):
        IndexSpec.make("hnsw", "rabitq")


def test_spilled_lists_find_more_through_fewer_probes_and_return_each_row_once() -> None:
    vectors, queries = wide(12_000, seed=7), wide(200, seed=8)
    labels = np.arange(12_000, dtype=np.int64)
    truth = exact_top(vectors, labels, queries, 10)
    got = {}
    for spill in (0, 50, 100):
        index = VectorIndex(IndexSpec.make("ivf", "float32", nlist=64, nprobe=2, spill=spill), 128)
        index.add(labels, vectors)
        results = index.search(queries, 10)
        # float codes, no rescoring: the k rows fetched may hold one twice, yet k distinct come back
        assert all(len(set(r.labels.tolist())) == len(r) == 10 for r in results)
        got[spill] = recall([set(r.labels.tolist()) for r in results], truth)
        if spill == 50:  # fitted on rows k-means did not train on: the rows it trained on spill less
            assert index.spill is not None and 3_000 < index.spill.entries < 6_000
    assert got[100] >= got[50] + 0.05 >= got[0] + 0.1, got
    spill_state = index.spill
    assert spill_state is not None and spill_state.entries >= 11_900  # all but those facing no second centroid
    assert index.faiss.ntotal == len(index) + spill_state.entries
    gone = np.unique(np.concatenate([r.labels for r in index.search(queries, 5)]))
    index.remove(gone)  # both entries of a spilled row go
    assert index.faiss.ntotal == len(index) + spill_state.entries
    assert not set(np.concatenate([r.labels for r in index.search(queries, 10)]).tolist()) & set(gone.tolist())


def test_projected_codes_take_fewer_bytes_and_rescoring_restores_the_ranking() -> None:
    vectors, queries = wide(12_000, seed=7), wide(50, seed=8)
    labels = np.arange(12_000, dtype=np.int64)
    truth = exact_top(vectors, labels, queries, 10)
    ram = {}
    for code_dims in (None, 64):
        index = VectorIndex(IndexSpec.make("ivf", "rabitq", rescore=10, nlist=16, nprobe=16, code_dims=code_dims), 128)
        index.add(labels, vectors)
        assert recall([set(r.labels.tolist()) for r in index.search(queries, 10)], truth) >= 0.9
        ram[code_dims] = index.ram_bytes()
    # 8 sign-bit bytes fewer a vector and 64 floats fewer a centroid, for a 128 × 64 float projection
    assert ram[None] - ram[64] == 12_000 * 8 + 16 * 64 * 4 - 128 * 64 * 4
    with pytest.raises(InputError, match="code_dims must be below the vectors' dimension 128, got 128"):
        VectorIndex(IndexSpec.make("flat", "rabitq", code_dims=128), 128)
    with pytest.raises(InputError, match="code_dims projects the vectors before RaBitQ coding"):
        IndexSpec.make("ivf", "int8", code_dims=64)


def test_spill_is_refused_where_there_are_no_lists_to_spill_into() -> None:
    for strategy, precision in (("flat", "float32"), ("hnsw", "int8"), ("ivf", "binary")):
        with pytest.raises(InputError, match="spill gives vectors a second inverted list: it needs strategy 'ivf'"):
            IndexSpec.make(strategy, precision, spill=10)
    with pytest.raises(InputError, match=r"spill must be between 0 and 100, got 150"):
        IndexSpec.make("ivf", "int8", spill=150)


def test_untrained_index_scans_its_rows_exactly() -> None:
    spec = IndexSpec.make("ivf", "int8")
    vectors = clustered(500)
    index = VectorIndex(spec, 48)
    index.add(np.arange(500), vectors)
    assert not index.trained
    result = index.search(vectors[:3], 1)
    assert [r.labels[0] for r in result] == [0, 1, 2]
    np.testing.assert_allclose([r.scores[0] for r in result], 1.0, atol=1e-5)


def test_labels_must_increase_and_shapes_must_match() -> None:
    index = VectorIndex(IndexSpec(), 48)
    index.add(np.array([5, 6]), clustered(2))
    with pytest.raises(InputError, match="strictly increasing"):
        index.add(np.array([6]), clustered(1))
    with pytest.raises(InputError, match="dimension 48"):
        index.add(np.array([9]), np.zeros((1, 12), dtype=np.float32))
    with pytest.raises(InputError, match=r"shape \(n, 48\)"):
        index.search(np.zeros((1, 12), dtype=np.float32), 3)
    with pytest.raises(InputError, match="Valid choices: flat, hnsw, ivf"):
        IndexSpec.make("hnws")
    with pytest.raises(InputError, match="rescore must be an integer ≥ 0"):
        IndexSpec.make("flat", "binary", rescore=-1)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe())
def test_checkpoint_round_trip_answers_identically(tmp_path: Path, spec: IndexSpec) -> None:
    vectors = clustered(11_000, seed=4)
    index = VectorIndex(spec, 48)
    index.add(np.arange(11_000), vectors)
    index.remove(np.arange(0, 11_000, 7))
    index.version = 3
    checkpoint.save(index, tmp_path, generation="g1")
    loaded, generation = checkpoint.load(tmp_path, spec, 48)
    assert generation == "g1" and loaded.version == 3 and len(loaded) == len(index)
    queries = clustered(20, seed=5)
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        assert a.labels.tolist() == b.labels.tolist()
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    # rows added after the checkpoint are kept apart until the next one, then appended
    loaded.add(np.arange(11_000, 11_100), clustered(100, seed=6))
    loaded.version = 4
    checkpoint.save(loaded, tmp_path, generation="g1")
    again, _ = checkpoint.load(tmp_path, spec, 48)
    assert len(again) == len(loaded) and again.search(queries, 5)[0].labels.tolist() == (
        loaded.search(queries, 5)[0].labels.tolist()
    )


def test_corrupted_checkpoint_files_are_detected(tmp_path: Path) -> None:
    spec = IndexSpec.make("hnsw", "binary")
    index = VectorIndex(spec, 48)
    index.add(np.arange(2_000), clustered(2_000))
    checkpoint.save(index, tmp_path, generation="g")
    for pattern in ["codes-*.faiss", "rows-*.safetensors", "vectors-g.f32"]:
        [target] = tmp_path.glob(pattern)
        original = target.read_bytes()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0xFF
        target.write_bytes(bytes(damaged))
        with pytest.raises(IndexCorruptError, match="fails its checksum"):
            checkpoint.load(tmp_path, spec, 48)
        target.write_bytes(original)
    (tmp_path / "vectors-g.f32").write_bytes(b"")
    with pytest.raises(IndexCorruptError, match="holds 0 vectors"):
        checkpoint.load(tmp_path, spec, 48)
    with pytest.raises(IndexCorruptError, match="another index setting"):
        checkpoint.load(tmp_path, IndexSpec(), 48)


def test_ivf_told_how_many_rows_come_sizes_its_lists_for_all_of_them() -> None:
    data = clustered(20_000, dim=16)
    spec = IndexSpec.make("ivf", "rabitq")
    lists = {}
    for expected in (0, len(data)):
        index = VectorIndex(spec, 16, expected=expected)
        for lo in range(0, len(data), 4_000):  # as a rebuild replays: batch by batch
            index.add(np.arange(lo, lo + 4_000), data[lo : lo + 4_000])
        assert index.trained
        lists[expected] = index.lists()
    # Without the hint the lists are sized for the 12,000 rows that first reached the floor.
    assert lists == {0: spec.lists_for(12_000), len(data): spec.lists_for(len(data))}
