"""Encoding huge inputs with several processes: each loads the model from its folder and writes its
rows straight into one shared-memory array, so only texts cross process boundaries, never vectors."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

_worker: Any = None  # the encoder each worker process loads once


def _load(folder: str) -> None:
    global _worker
    from nestvec.encoders import load_encoder

    _worker = load_encoder(folder)


def _encode_into(memory: str, shape: tuple[int, int], start: int, texts: list[str], batch_size: int) -> None:
    block = SharedMemory(name=memory)
    try:
        out = np.ndarray(shape, dtype=np.float32, buffer=block.buf)
        out[start : start + len(texts)] = _worker.encode(texts, batch_size=batch_size, progress=False)
        del out  # the view must go before the block closes
    finally:
        block.close()


def encode_in_processes(
    folder: Path, texts: Sequence[str], dim: int, *, processes: int, batch_size: int, parts_per_process: int = 4
) -> np.ndarray:
    """Rows in input order. Spawned processes (not forked): safe beside threads, on every platform."""
    shape = (len(texts), dim)
    block = SharedMemory(create=True, size=max(1, len(texts) * dim * 4))
    try:
        step = -(-len(texts) // (processes * parts_per_process))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_load, initargs=(str(folder),)) as pool:
            jobs = [
                pool.submit(_encode_into, block.name, shape, lo, list(texts[lo : lo + step]), batch_size)
                for lo in range(0, len(texts), step)
            ]
            for job in jobs:
                job.result()
        result = np.ndarray(shape, dtype=np.float32, buffer=block.buf).copy()
        return result
    finally:
        block.close()
        block.unlink()
