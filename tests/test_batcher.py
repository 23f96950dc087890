"""The model process's micro-batcher: parts of a large request across workers, and its worker plan."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nestvec
from nestvec.serve.batcher import BatchPolicy, MicroBatcher
from nestvec.serve.model_host import worker_plan


def _answer(
    batcher: MicroBatcher, texts: list[str], counts: list[int]
) -> tuple[np.ndarray | None, BaseException | None]:
    done = threading.Event()
    found: list[tuple[np.ndarray | None, BaseException | None]] = []

    def settle(rows: np.ndarray | None, error: BaseException | None) -> None:
        found.append((rows, error))
        done.set()

    batcher.submit(texts, counts, settle)
    assert done.wait(60)
    return found[0]


def test_a_large_request_is_cut_across_workers_and_answered_once_in_order(encoder: nestvec.Encoder) -> None:
    texts = [f"text {i} about " + "vectors and their search " * (1 + i % 7) for i in range(60)]
    counts = encoder.token_counts(texts)
    calls: list[tuple[str, int]] = []

    def encode(part: list[str]) -> np.ndarray:
        calls.append((threading.current_thread().name, len(part)))
        return encoder.encode(part)

    batcher = MicroBatcher(encode, BatchPolicy(max_tokens=8192, workers=2))
    try:
        rows, error = _answer(batcher, texts, counts)
    finally:
        batcher.close()
    assert error is None and rows is not None
    np.testing.assert_allclose(rows, encoder.encode(texts), atol=1e-5)
    assert len(calls) == 2 and sum(n for _, n in calls) == 60  # two parts of about half the tokens
    assert len({name for name, _ in calls}) == 2  # one on each worker


def test_a_failing_part_fails_the_whole_request_once(encoder: nestvec.Encoder) -> None:
    texts = [f"sentence number {i} " * 20 for i in range(40)]

    def encode(part: list[str]) -> np.ndarray:
        if "sentence number 39 " in part[-1]:
            raise RuntimeError("the model broke")
        return encoder.encode(part)

    batcher = MicroBatcher(encode, BatchPolicy(workers=2))
    try:
        rows, error = _answer(batcher, texts, encoder.token_counts(texts))
    finally:
        batcher.close()
    assert rows is None and isinstance(error, RuntimeError)


def test_small_requests_and_one_worker_are_not_cut(encoder: nestvec.Encoder) -> None:
    sizes: list[int] = []

    def encode(part: list[str]) -> np.ndarray:
        sizes.append(len(part))
        return encoder.encode(part)

    for workers, texts in ((2, ["a short one", "another short one"]), (1, ["long text " * 30] * 20)):
        batcher = MicroBatcher(encode, BatchPolicy(workers=workers))
        try:
            rows, _ = _answer(batcher, texts, encoder.token_counts(texts))
        finally:
            batcher.close()
        assert rows is not None and len(rows) == len(texts)
    assert sizes == [2, 20]


@pytest.mark.parametrize(
    ("asked", "on_cpu", "expected"),
    [((None, None), True, 2), ((None, None), False, 1), ((3, None), True, 3), ((1, 4), False, 1)],
)
def test_worker_plan(asked: tuple[int | None, int | None], on_cpu: bool, expected: int) -> None:
    import os

    workers, threads = worker_plan(*asked, on_cpu=on_cpu)
    cores = len(os.sched_getaffinity(0))
    assert workers == (1 if asked[0] is None and cores < 2 else expected)
    assert threads == asked[1]  # threads are the user's; None leaves them to the backend
