"""Write RELIABILITY.md from the saved results of the four harnesses (reliability/results/*.json)
and the table of bounds tested in the fast suite (reliability/bounds.md).

Usage: python reliability/report.py   (after faults.py, corrupt.py, badinputs.py and soak.py)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "reliability" / "results"


def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((RESULTS / f"{name}.json").read_text()))


def _faults(f: dict[str, Any]) -> list[str]:
    s = f["summary"]
    during = ", ".join(f"{op} {n}" for op, n in s["killed_during"].items())
    settings = ", ".join(f"{k} ({v})" for k, v in s["kills_per_setting"].items())
    return [
        "## Kills: writer processes SIGKILLed at random points",
        "",
        f"`{f['command']}` ({f['seconds']:.0f} s). Each round runs one or two writer processes and a reader",
        "process on one collection; writers run random add / upsert / delete / checkpoint / compact /",
        "repair operations and are SIGKILLed, most kills aimed a few milliseconds into a randomly chosen",
        "kind of operation. After every round: `check` (model included), every acknowledged write present",
        "with its own text and vector, every acknowledged delete absent, the operation in flight",
        "all-or-nothing, every document ranked top-10 by its own stored vector.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| kills, one writer process | {s['1_writer']['kills']} |",
        f"| kills, two writer processes | {s['2_writers']['kills']} |",
        f"| acknowledged writes lost (one / two writers) | {s['1_writer']['acknowledged_lost']} / "
        f"{s['2_writers']['acknowledged_lost']} |",
        f"| operations applied in part | {s['1_writer']['partial_ops'] + s['2_writers']['partial_ops']} |",
        f"| index rows whose vector differs from the stored one, after all kills | {s['wrong_vectors']} |",
        f"| `check` failures after a kill | {s['check_failures']} |",
        f"| documents not finding themselves | {s['not_finding_themselves']} |",
        f"| reader passes (list + search) during the kills / partial batches seen | {s['reader_reads']} / "
        f"{s['reader_problems']} |",
        f"| kills per setting | {settings} |",
        f"| operation in flight at the kill | {during} |",
        "",
    ]


def _corrupt(c: dict[str, Any]) -> list[str]:
    s = c["summary"]
    rows = [
        f"| `{name}` | {n.get('detected', 0)} | {n.get('harmless', 0)} | {n.get('undetected', 0)} |"
        for name, n in s["per_file"].items()
    ]
    return [
        "## Corruption: every file of a collection, and of its model, damaged in turn",
        "",
        f"`{c['command']}` ({c['seconds']:.0f} s): {s['cases']} cases on the recipes "
        + ", ".join(f"`{r}`" for r in c["recipes"].values())
        + " and a model folder. Each file is damaged one way (a bit flipped at a random offset, many per",
        "file and most in the store's pages; truncated to half or to nothing; deleted; random bytes; garbage",
        "appended). *Detected*: `check` fails or refuses with a clear error. *Harmless*: check passes and",
        "documents, stored vectors and answers equal the undamaged copy's (the bytes hit were unused: free",
        "space in a page, a README). *Undetected*: check passes and something differs.",
        "",
        "| file | detected | harmless | undetected |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        f"Of the detected cases, `repair` rebuilt {s['repaired_like_undamaged']} from the store with answers",
        f"like the undamaged copy's, and refused {s['repair_refused_store']} store-damage cases with \"restore the",
        'collection from a backup" (the store has no other copy); the rest (recipe, whitening or model',
        "damage) are reported by `check` naming the file.",
        "",
    ]


def _bad(b: dict[str, Any]) -> list[str]:
    s = b["summary"]["per_entry"]
    st = b.get("schemathesis") or {}
    rows = []
    for entry, v in s.items():
        outcomes = ", ".join(f"{k}: {n}" for k, n in v["outcomes"].items())
        rows.append(f"| {entry} | {v['cases']} | {outcomes} | {len(v['failures'])} |")
    lines = [
        "## Bad inputs at every entry point",
        "",
        f"`{b['command']}`: hand-written cases (ids, texts, metadata, filters, k, modes, recipes, paths,",
        "bodies with NaN, lone surrogates, invalid UTF-8, 10,000-deep JSON, 9 MB) at the library (a",
        "NestvecError expected), the CLI (non-zero exit, no traceback) and the HTTP server (4xx).",
        "",
        "| entry point | cases | outcomes | failures (crash or 5xx) |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        f"HTTP 5xx: {b['summary']['http_5xx']}. The collection the cases were aimed at passed `check` afterwards: "
        f"{b['summary']['collection_intact']}.",
    ]
    if st:
        lines += [
            f"Schemathesis (`{st['command']}`): {st['generated']} generated requests, {st['passed']} without a",
            f"5xx, including {st['stateful_scenarios']} stateful scenarios through the links it infers between",
            "operations (create a collection, add, search, get, delete).",
        ]
    accepted = [f"{e}: {', '.join(v['accepted'])}" for e, v in s.items() if v["accepted"]]
    if accepted:
        lines += ["", "Accepted on purpose: " + "; ".join(accepted) + " (an empty text embeds like any other)."]
    return [*lines, ""]


def _soak(k: dict[str, Any]) -> list[str]:
    load = k["load"]
    end = k["samples"][-1]
    minute = min(k["samples"], key=lambda s: abs(s["t"] - (end["t"] - 60)))
    return [
        "## Soak: a served process under a mixed load",
        "",
        f"`{k['command']}` on {k['machine']}: {k['clients']} clients for {k['seconds']:.0f} s, loopback, a",
        "random mix of embeddings, dense/sparse/hybrid searches with filters, gets, adds, upserts and",
        "deletes (the same mix races a CLI writer in `tests/test_serve_race.py`).",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| requests (per second) | {load['requests']:,} ({k['requests_per_s']}) |",
        f"| statuses | {', '.join(f'{s}: {n:,}' for s, n in load['statuses'].items())} |",
        f"| 5xx / transport errors | {load['server_errors']} / {load['transport_errors']} |",
        f"| resident memory after the 30 s warm-up → end (max) | {k['rss_mb_after_warm_up']} → "
        f"{k['rss_mb_end']} MB ({k['rss_mb_max']} MB) |",
        f"| memory drift after warm-up / in the last minute | {k['rss_drift_mb']:+} MB / "
        f"{end['rss_mb'] - minute['rss_mb']:+.1f} MB |",
        f"| open descriptors after warm-up → end (max) | {k['fds_after_warm_up']} → {k['fds_end']} ({k['fds_max']}) |",
        "",
        "409s are adds of ids another client stored first; 404s, gets and deletes of ids not (or no",
        "longer) stored. The soak found one leak: upserts kept the replaced rows in memory until 100,000",
        "changes (memory grew linearly in the run before the fix, whose results this run replaced); the",
        "live index now rebuilds once tombstones outnumber live rows, and the remaining growth slows",
        "down over the run (the samples, every 5 s, are in `reliability/results/soak.json`).",
        "",
    ]


def main() -> None:
    parts = [
        "# Reliability",
        "",
        "Measured results of nestvec's reliability harnesses (the latest run of each; rerun any with its",
        "command, then `python reliability/report.py` to rewrite this file). The fast suite (`make test`)",
        "runs a small version of each harness; these runs are larger.",
        "",
        *_faults(_load("faults")),
        *_corrupt(_load("corrupt")),
        *_bad(_load("badinputs")),
        *_soak(_load("soak")),
        (ROOT / "reliability" / "bounds.md").read_text(),
    ]
    (ROOT / "RELIABILITY.md").write_text("\n".join(parts))
    print(f"wrote {ROOT / 'RELIABILITY.md'}")


if __name__ == "__main__":
    main()
