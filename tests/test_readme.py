"""The README's quick start, run as a new user would copy it: its Python block, then each shell
line, in a fresh folder that holds only the example files the README names."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT


def quick_start() -> tuple[str, list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    shell = re.search(r"```bash\n(.*?)```", section, re.S)
    assert python and shell, "the quick start has a python and a bash block"
    lines = [line.split("  #", 1)[0].strip() for line in shell.group(1).splitlines()]
    return python.group(1), [line for line in lines if line]


def test_the_readme_quick_start_runs_line_by_line(tmp_path: Path) -> None:
    for name in ("examples", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    python, lines = quick_start()
    done = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("p1 "), done.stdout
    *commands, serve = lines
    assert serve.startswith("nestvec serve ")
    for line in commands:
        ran = subprocess.run(shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert ran.returncode == 0, f"{line}\n{ran.stderr[-3000:]}"
    assert (tmp_path / "plan.png").stat().st_size > 1000
    port = 8000 if _free(8000) else _any_port()  # the README's port, unless this machine has it taken
    server = subprocess.Popen([*shlex.split(serve), "--port", str(port)], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        found = httpx.post(f"http://127.0.0.1:{port}/collections/papers/search", json={"query": "binary codes"})
        assert page.status_code == 200 and found.status_code == 200 and found.json()["hits"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _any_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
