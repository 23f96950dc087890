"""Fault injection: writer processes SIGKILLed at random points, the collection checked after each kill.

Each round starts one or two writer processes and one reader process on the same collection.
A writer runs a random mix of add / upsert / delete (also of ids never stored) / checkpoint /
compact / repair (rebuilds the keyword index and, when check finds it needed, the vector index)
back to back, printing
`BEGIN <op>` before each and `ACK` once the call returned; it is SIGKILLed after a random delay.
The reader searches and lists the collection the whole time and reports any batch it sees in
part. After every round, with nothing running:
- `check_collection` (what `nestvec check` runs) must pass, model files included;
- every acknowledged write is present with its own text and vector, every acknowledged delete
  absent; the operation in flight at the kill is all-or-nothing;
- every document finds itself: a search by its stored vector ranks it in the top 10.

Writers write their own ids (w0-..., w1-...), so the expected state of each is exact; their
writes and checkpoints interleave through the one store and index folder. Documents carry a
batch tag and its size, so a partial batch is visible to the reader and to the checks.

Usage: python reliability/faults.py [--kills 240] [--settings flat,int8,...] [--seed 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Enough documents before the first kill that every setting has trained codes (int8 and RaBitQ
# train at 1,000 vectors, IVF at 10,000), so kills hit trained indexes, not float rows alone.
SEEDED = {"int8": 1_200, "rabitq": 1_200, "ivf": 10_200}
SETTINGS = {
    "flat": "minilm",
    "int8": "minilm:codes=int8",
    "binary": "minilm:codes=binary",
    "rabitq": "minilm:codes=rabitq",
    "hnsw": "minilm:index=hnsw",
    "ivf": "minilm:index=ivf",
}
OPS = ("add", "upsert", "delete", "delete-missing", "checkpoint", "compact", "repair")
WEIGHTS = (40, 25, 15, 4, 12, 5, 3)
PAPERS = ROOT / "examples" / "papers.jsonl"
WORDS = sorted(
    {w for line in PAPERS.open(encoding="utf-8") for w in json.loads(line)["title"].lower().split() if w.isalpha()}
)
State = dict[str, tuple[str, str, int]]  # id -> (text, batch tag, batch size)


def _say(*parts: Any) -> None:
    print(*parts, flush=True)


def _text(rng: random.Random, doc_id: str) -> str:
    return doc_id + " " + " ".join(rng.choices(WORDS, k=12))


def run_writer(path: str, writer: int, seed: int, round_: int) -> None:
    """The writer process: random operations forever, until it is killed."""
    from nestvec import Collection, repair_collection

    rng = random.Random(seed)
    collection = Collection.open(path)
    prefix = f"w{writer}-r{round_}-"
    batches: dict[str, list[str]] = {}
    for doc in collection:
        if doc.id.startswith(f"w{writer}-"):
            batches.setdefault(doc.metadata["tag"], []).append(doc.id)
    _say("READY")
    for n in range(10**9):
        op = rng.choices(OPS, WEIGHTS)[0] if batches else "add"
        tag = f"{prefix}t{n}"
        if op in ("add", "upsert"):
            old = batches.pop(rng.choice(sorted(batches))) if op == "upsert" else []
            ids = old + [f"{prefix}{n}-{i}" for i in range(rng.randint(0 if old else 1, 12))]
            docs = [{"id": i, "text": _text(rng, i), "metadata": {"tag": tag, "n": len(ids)}} for i in ids]
            _say("BEGIN", json.dumps({"op": op, "docs": docs}))
            (collection.upsert if op == "upsert" else collection.add)(docs)
            batches[tag] = ids
        elif op == "delete":
            ids = batches.pop(rng.choice(sorted(batches)))
            _say("BEGIN", json.dumps({"op": op, "ids": ids}))
            collection.delete(ids)
        elif op == "delete-missing":  # writes nothing; once made the index skip another writer's write
            _say("BEGIN", json.dumps({"op": op, "ids": [f"{prefix}never-{n}"]}))
            collection.delete([f"{prefix}never-{n}"])
        else:
            _say("BEGIN", json.dumps({"op": op}))
            if op == "checkpoint":
                collection.checkpoint()
            elif op == "compact":
                collection.compact()
            else:
                repair_collection(path)
        _say("ACK")


def run_reader(path: str, seed: int) -> None:
    """The reader process: lists and searches until killed; prints PARTIAL for any batch seen in part."""
    from nestvec import Collection

    rng = random.Random(seed)
    collection = Collection.open(path)
    _say("READY")
    for reads in range(1, 10**9):
        docs = list(collection)
        sizes = {d.metadata["tag"]: d.metadata["n"] for d in docs}
        seen = Counter(d.metadata["tag"] for d in docs)
        for tag, count in seen.items():
            if count != sizes[tag]:
                _say("PARTIAL", tag, count, sizes[tag])
        for hit in collection.search(" ".join(rng.choices(WORDS, k=6)), k=5):
            if hit.metadata.get("tag") is None:
                _say("PARTIAL", hit.id, "a hit without its metadata")
        _say("READS", reads)


@dataclass
class Proc:
    """A child process and the lines it printed (read by a thread, so its pipe never fills)."""

    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *args: str) -> Proc:
        popen = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
        )
        proc = cls(popen)
        threading.Thread(target=proc._read, daemon=True).start()
        return proc

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "READY" not in self.lines:
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"child did not start: {self.stderr()}")
            time.sleep(0.01)

    def kill(self) -> bool:
        """SIGKILL; True when the process was still running (a kill that hit something)."""
        alive = self.popen.poll() is None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        time.sleep(0.05)  # the reader thread drains what the pipe still holds
        return alive

    def stderr(self) -> str:
        assert self.popen.stderr is not None
        return self.popen.stderr.read()[-3000:] if self.popen.poll() is not None else ""


@dataclass
class Ledger:
    """What one writer has been told is stored, and the operation it had begun when killed."""

    state: State = field(default_factory=dict)
    pending: dict[str, Any] | None = None

    def replay(self, lines: list[str]) -> str | None:
        """Apply the acknowledged operations; returns the op in flight at the kill, if any."""
        for number, line in enumerate(lines):
            if line.startswith("BEGIN "):
                try:
                    self.pending = json.loads(line[6:])
                except json.JSONDecodeError:
                    if number != len(lines) - 1:
                        raise
                    break  # cut short by the kill: printed before its operation began, so none began
            elif line == "ACK" and self.pending is not None:
                self.state = after(self.state, self.pending)
                self.pending = None
        return None if self.pending is None else str(self.pending["op"])


def after(state: State, op: dict[str, Any]) -> State:
    out = dict(state)
    if op["op"] in ("add", "upsert"):
        for doc in op["docs"]:
            out[doc["id"]] = (doc["text"], doc["metadata"]["tag"], doc["metadata"]["n"])
    elif op["op"] == "delete":
        for i in op["ids"]:
            out.pop(i, None)
    return out


@dataclass
class Round:
    """One round: what was killed, what was in flight, and what the checks found afterwards."""

    setting: str
    writers: int
    kills: int
    in_flight: list[str]
    check_failures: list[str]
    acknowledged_lost: int  # acknowledged writes missing or changed
    partial_ops: int  # operations in flight at the kill that were applied in part
    wrong_vectors: int  # index rows whose vector differs from the stored one
    not_finding_themselves: int
    documents: int
    reads: int
    reader_problems: list[str]
    writer_errors: list[str]

    @property
    def clean(self) -> bool:
        return not (
            self.check_failures
            or self.acknowledged_lost
            or self.partial_ops
            or self.wrong_vectors
            or self.not_finding_themselves
            or self.reader_problems
            or self.writer_errors
        )


def seed_documents(path: Path, setting: str, ledger: Ledger) -> None:
    """The seeded documents, in tagged batches like the writers'; the ledger that expects them."""
    from nestvec import Collection

    rng = random.Random(setting)
    with Collection.open(path) as collection:
        for start in range(0, SEEDED.get(setting, 0), 256):
            ids = [f"seed-{i}" for i in range(start, min(start + 256, SEEDED[setting]))]
            docs = [{"id": i, "text": _text(rng, i), "metadata": {"tag": f"seed-t{start}", "n": len(ids)}} for i in ids]
            ledger.pending = {"op": "add", "docs": docs}
            collection.add(docs)
            ledger.state, ledger.pending = after(ledger.state, ledger.pending), None


def verify(path: Path, ledgers: dict[str, Ledger]) -> dict[str, Any]:
    """The checks run after every kill, with no process left on the collection."""
    from nestvec import Collection, check_collection

    report = check_collection(path)
    failures = [f"{f.part}: {f.detail}" for f in report.findings if not f.ok]
    wrong = sum(f.wrong for f in report.findings if f.part == "index")
    lost = partial = 0
    with Collection.open(path) as collection:
        actual: State = {d.id: (d.text, d.metadata["tag"], d.metadata["n"]) for d in collection}
        for prefix, ledger in ledgers.items():
            mine = {k: v for k, v in actual.items() if k.startswith(prefix)}
            done = after(ledger.state, ledger.pending) if ledger.pending else ledger.state
            if mine not in (ledger.state, done):
                keys = set(mine) | set(ledger.state) | set(done)
                bad = sum(mine.get(k) not in (ledger.state.get(k), done.get(k)) for k in keys)
                lost += bad
                partial += not bad  # each id is old or new, but not all alike: half an operation
            ledger.state, ledger.pending = mine, None
        _, vectors, owners = collection.stored_vectors()
        missed = 0
        for start in range(0, len(owners), 256):
            part = owners[start : start + 256]
            texts = [actual[o][0] for o in part]
            hits = collection.search_batch(texts, k=10, encoded=vectors[start : start + 256])
            missed += sum(o not in {h.id for h in found} for o, found in zip(part, hits, strict=True))
    return {
        "check_failures": failures,
        "acknowledged_lost": lost,
        "partial_ops": partial,
        "wrong_vectors": wrong,
        "not_finding_themselves": missed,
        "documents": len(actual),
    }


def one_round(path: Path, setting: str, writers: int, ledgers: dict[str, Ledger], rng: random.Random, r: int) -> Round:
    seed = rng.randrange(1 << 30)
    reader = Proc.start("--reader", str(path), str(seed))
    procs = [Proc.start("--writer", str(path), str(w), str(seed + w + 1), str(r)) for w in range(writers)]
    for proc in [reader, *procs]:
        proc.wait_ready()
    kills = 0
    errors: list[str] = []
    for w, proc in enumerate(procs):  # two writers: the first is killed while the second goes on
        _await_kill_point(proc, rng)
        if proc.popen.poll() is not None:
            errors.append(f"writer {w} exited by itself: {proc.stderr()}")
        kills += proc.kill()
    reader_died = reader.popen.poll() is not None
    reader.kill()
    problems = [line for line in reader.lines if line.startswith("PARTIAL")]
    if reader_died:
        problems.append(f"reader exited by itself: {reader.stderr()}")
    counts = [line.split()[1] for line in reader.lines if line.startswith("READS ")]
    reads = max((int(n) for n in counts if n.isdigit()), default=0)  # the kill may cut the last line short
    in_flight = [ledgers[f"w{w}-"].replay(procs[w].lines) or "between operations" for w in range(writers)]
    found = verify(path, ledgers)
    return Round(
        setting, writers, kills, in_flight, reads=reads, reader_problems=problems, writer_errors=errors, **found
    )


def _await_kill_point(proc: Proc, rng: random.Random) -> None:
    """Kill points spread over every kind of operation: most kills aim at a random operation kind
    (a random few milliseconds after its BEGIN, so inside it), the rest at a random moment."""
    if rng.random() < 0.3:
        time.sleep(rng.uniform(0.05, 1.5))
        return
    target = json.dumps({"op": rng.choice(OPS)})[:-1]
    seen = len(proc.lines)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and proc.popen.poll() is None:
        if any(line.startswith("BEGIN " + target) for line in proc.lines[seen:]):
            time.sleep(rng.uniform(0, 0.02))
            return
        time.sleep(0.001)


def run_faults(*, settings: list[str], kills: int, seed: int, workdir: Path) -> list[Round]:
    """Rounds alternate one and two writers until each setting has had its share of the kills."""
    from nestvec import Collection

    rng = random.Random(seed)
    rounds: list[Round] = []
    share = -(-kills // len(settings))
    for setting in settings:
        path = workdir / setting
        Collection.create(path, SETTINGS[setting]).close()
        ledgers = {"w0-": Ledger(), "w1-": Ledger(), "seed-": Ledger()}
        seed_documents(path, setting, ledgers["seed-"])
        done = 0
        while done < share:
            writers = 2 if len(rounds) % 2 and share - done > 1 else 1
            rounds.append(one_round(path, setting, writers, ledgers, rng, len(rounds)))
            done += rounds[-1].kills
            _progress(rounds[-1])
    return rounds


def _progress(r: Round) -> None:
    mark = "ok" if r.clean else "FAILED"
    print(
        f"{r.setting:7} writers={r.writers} killed in {', '.join(r.in_flight):30} docs={r.documents:5} "
        f"reads={r.reads:4} {mark}",
        file=sys.stderr,
        flush=True,
    )
    if not r.clean:
        print(json.dumps(asdict(r), indent=1), file=sys.stderr)


def summary(rounds: list[Round]) -> dict[str, Any]:
    def total(key: str, writers: int | None = None) -> int:
        return sum(
            len(v) if isinstance(v := getattr(r, key), list) else v for r in rounds if writers in (None, r.writers)
        )

    by_writers = {
        f"{w}_writer{'s' if w > 1 else ''}": {
            "kills": total("kills", w),
            "acknowledged_lost": total("acknowledged_lost", w),
            "partial_ops": total("partial_ops", w),
        }
        for w in (1, 2)
    }
    return {
        "kills": total("kills"),
        **by_writers,
        "rounds": len(rounds),
        "clean_rounds": sum(r.clean for r in rounds),
        "check_failures": total("check_failures"),
        "wrong_vectors": total("wrong_vectors"),
        "not_finding_themselves": total("not_finding_themselves"),
        "reader_reads": total("reads"),
        "reader_problems": total("reader_problems"),
        "writer_errors": total("writer_errors"),
        "killed_during": dict(Counter(op for r in rounds for op in r.in_flight).most_common()),
        "kills_per_setting": dict(Counter(r.setting for r in rounds for _ in range(r.kills))),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        run_writer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--reader":
        run_reader(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=240)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "faults.json")
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="nestvec-faults-") as tmp:
        rounds = run_faults(settings=args.settings.split(","), kills=args.kills, seed=args.seed, workdir=Path(tmp))
    result = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "seconds": round(time.time() - started, 1),
        "settings": {s: SETTINGS[s] for s in args.settings.split(",")},
        "summary": summary(rounds),
        "rounds": [asdict(r) for r in rounds],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    sys.exit(0 if all(r.clean for r in rounds) else 1)


if __name__ == "__main__":
    main()
