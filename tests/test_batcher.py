"""The model process's micro-batcher: parts of a large request across workers, and its worker plan."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest

import nestvec
from nestvec.serve.batcher import BatchPolicy, MicroBatcher
from nestvec.serve.model_host import _Model, narrow_threads, worker_plan


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


def _submit(batcher: MicroBatcher, texts: list[str], found: list[np.ndarray | None]) -> threading.Event:
    done = threading.Event()

    def settle(rows: np.ndarray | None, error: BaseException | None) -> None:
        found.append(rows)
        done.set()

    batcher.submit(texts, [4] * len(texts), settle)
    return done


def test_running_counts_the_batches_being_encoded() -> None:
    seen: list[int] = []
    both = threading.Barrier(2, timeout=30)

    def encode(texts: list[str]) -> np.ndarray:
        both.wait()  # both batches have started
        seen.append(batcher.running)
        both.wait()  # and neither ends before the other has looked
        return np.zeros((len(texts), 3), dtype=np.float32)

    batcher = MicroBatcher(encode, BatchPolicy(enabled=False, workers=2))
    found: list[np.ndarray | None] = []
    try:
        waits = [_submit(batcher, ["one"], found), _submit(batcher, ["two"], found)]
        assert all(w.wait(30) for w in waits)
    finally:
        batcher.close()
    assert seen == [2, 2] and batcher.running == 0 and len(found) == 2


class _Recording:
    """A real encoder that notes its name in `log` on each call and first runs `hold`."""

    def __init__(self, name: str, real: nestvec.Encoder, log: list[str], hold: Callable[[], None]) -> None:
        self.name, self.real, self.log, self.hold = name, real, log, hold

    def encode(self, texts: list[str], **options: object) -> np.ndarray:
        self.log.append(self.name)
        self.hold()
        return self.real.encode(texts)


def test_a_batch_beside_another_runs_on_the_narrow_encoder(encoder: nestvec.Encoder) -> None:
    used: list[str] = []
    first_started, second_started = threading.Event(), threading.Event()

    def hold() -> None:
        if len(used) == 1:  # the first batch is still running when the second starts
            first_started.set()
            assert second_started.wait(30)
        elif len(used) == 2:
            second_started.set()

    wide = _Recording("wide", encoder, used, hold)
    narrow = _Recording("narrow", nestvec.load_encoder("minilm", threads=1), used, hold)
    model = _Model(cast(nestvec.Encoder, wide), BatchPolicy(enabled=False, workers=2))
    model.add_narrow(lambda: cast(nestvec.Encoder, narrow))
    found: list[np.ndarray | None] = []
    try:
        first = _submit(model.batcher, ["a sentence about vectors"], found)
        assert first_started.wait(30)
        second = _submit(model.batcher, ["another sentence"], found)
        assert first.wait(30) and second.wait(30)
        assert _submit(model.batcher, ["a third, alone"], found).wait(30)
    finally:
        model.batcher.close()
    assert used == ["wide", "narrow", "wide"]
    assert all(rows is not None and rows.shape == (1, encoder.dim) for rows in found)


@pytest.mark.parametrize(
    ("workers", "threads", "expected"), [(2, 4, 2), (3, 6, 2), (2, 1, None), (1, 4, None), (1, None, None)]
)
def test_a_batch_beside_others_gets_its_share_of_the_threads(
    workers: int, threads: int | None, expected: int | None
) -> None:
    assert narrow_threads(workers, threads) == expected


def test_a_second_session_that_fails_to_load_leaves_the_first(
    encoder: nestvec.Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> nestvec.Encoder:
        raise MemoryError("no room for a second copy")

    model = _Model(encoder, BatchPolicy(enabled=False, workers=2))
    try:
        model.add_narrow(fail)
        found: list[np.ndarray | None] = []
        assert _submit(model.batcher, ["still answered"], found).wait(30)
    finally:
        model.batcher.close()
    assert model.narrow is None and found[0] is not None and found[0].shape == (1, encoder.dim)
    assert "no room for a second copy" in caplog.text
