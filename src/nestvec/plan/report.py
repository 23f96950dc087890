"""`nestvec plan` output: a table with the Pareto front marked, and a two-panel plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nestvec.errors import MissingExtraError
from nestvec.plan.measure import Measurement

HEADER = ["#", "setting", "quality", "bytes/vec", "RAM MiB", "q/s", "p50 ms", "p99 ms", "build s", "front"]


def table_rows(rows: Sequence[Measurement]) -> list[list[str]]:
    return [
        [
            str(n),
            r.setting,
            f"{r.quality:.2f}",
            f"{r.bytes_per_vector:.0f}",
            f"{r.ram_bytes / 2**20:.2f}",
            f"{r.qps:.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.build_s:.2f}",
            "*" if r.pareto else "",
        ]
        for n, r in enumerate(rows, start=1)
    ]


def print_table(rows: Sequence[Measurement], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} · quality = {rows[0].quality_metric} · * = Pareto front")
    for name in HEADER:
        table.add_column(name, justify="left" if name == "setting" else "right")
    for row in table_rows(rows):
        table.add_row(*row)
    console = Console()
    Console(width=max(console.width, 150)).print(table)


def plot(rows: Sequence[Measurement], path: str | Path, title: str) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "eval", "Plotting") from exc
    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for axis, attr, label in ((axes[0], "bytes_per_vector", "RAM bytes per vector"), (axes[1], "qps", "queries/s")):
        for on_front in (False, True):
            chosen = [r for r in rows if r.pareto == on_front]
            axis.scatter(
                [getattr(r, attr) for r in chosen],
                [r.quality for r in chosen],
                s=36,
                marker="o" if on_front else "x",
                label="Pareto front" if on_front else "dominated",
            )
        for n, r in enumerate(rows, start=1):  # row numbers of the table: names would overlap
            axis.annotate(str(n), (getattr(r, attr), r.quality), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_xscale("log", base=2)
        axis.set_xlabel(f"{label} (log scale)")
        axis.set_ylabel(rows[0].quality_metric)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{title} (numbers are the table's rows)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
