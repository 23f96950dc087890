"""Faults for Ray jobs, shared by tests/test_scale.py and bench/scale.py: a job's progress, and a killed actor."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from nestvec.scale.shards import MANIFEST


def finished(folder: Path) -> int:
    """Shards the job's manifest records as finished."""
    path = folder / MANIFEST
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def kill_an_actor() -> int | None:
    """SIGKILL one ShardEmbedder actor process; its pid, or None when none runs."""
    for pid in os.listdir("/proc"):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and "ShardEmbedder" in title:
            os.kill(int(pid), signal.SIGKILL)
            return int(pid)
    return None
