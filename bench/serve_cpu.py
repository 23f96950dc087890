"""Where a served search spends its CPU: milliseconds of CPU per request in the HTTP process and in
each of its children (the model process), 8 search clients on loopback (bench/serve.py's load).

Builds the demo collection with the nestvec found in SRC (so an older checkout is measured the
same way), serves it, warms up for 2 s, then reads each process's user+system CPU time around a
SECONDS-long run of the clients.

Usage: python bench/serve_cpu.py SRC [SECONDS] [SERVE FLAGS...]   (e.g. src 10 --workers 1)
With OUT=FILE in the environment, the figures (and each process's resident memory after the run)
are added to FILE, a JSON list, one entry per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def cpu_seconds(proc: psutil.Process) -> dict[int, tuple[str, float]]:
    found = {}
    for p in [proc, *proc.children(recursive=True)]:
        times = p.cpu_times()
        found[p.pid] = (" ".join(p.cmdline()[1:4]), times.user + times.system)
    return found


def main() -> None:
    import serve as load
    from tests.serving import served

    src, seconds, flags = Path(sys.argv[1]).resolve(), float(sys.argv[2]) if len(sys.argv) > 2 else 10.0, sys.argv[3:]
    with tempfile.TemporaryDirectory() as tmp:
        papers = Path(tmp) / "papers"
        build = [sys.executable, "-m", "nestvec.cli.main", "index", "build", str(ROOT / "examples" / "papers.jsonl")]
        build += [str(papers), "--text-field", "title", "--text-field", "text", "--no-progress"]
        subprocess.run(build, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(src)})
        threads = int(os.environ.get("THREADS", "2"))
        with served([str(papers), *flags], log=Path(tmp) / "log", threads=threads, src=src) as (url, proc):
            load.run_clients(url, 8, 2.0, "search")
            server = psutil.Process(proc.pid)
            before = cpu_seconds(server)
            row = load.run_clients(url, 8, seconds, "search")
            after = cpu_seconds(server)
            resident = {p.pid: p.memory_info().rss / 2**20 for p in [server, *server.children(recursive=True)]}
    print(row)
    processes = []
    for pid, (name, spent) in after.items():
        per_request = (spent - before.get(pid, ("", 0.0))[1]) / row["requests"] * 1000
        print(f"{name:60s} {per_request:.2f} ms CPU per request, {resident[pid]:.0f} MB resident")
        processes.append({"process": name, "cpu_ms_per_request": per_request, "resident_mb": resident[pid]})
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
        runs = json.loads(out.read_text()) if out.exists() else []
        command = "python bench/serve_cpu.py " + " ".join(sys.argv[1:])
        runs.append({"command": command, "src": str(src), "load": row, "processes": processes})
        out.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
