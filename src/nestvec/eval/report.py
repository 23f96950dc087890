"""Rendering of evaluation results: terminal table, Markdown report, trade-off plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nestvec.errors import MissingExtraError
from nestvec.eval.tasks import TaskResult


def _columns(results: Sequence[TaskResult]) -> list[str]:
    names: list[str] = []
    for result in results:
        names += [m for m in result.metrics if m not in names]
    return names


def rows(results: Sequence[TaskResult]) -> tuple[list[str], list[list[str]]]:
    metrics = _columns(results)
    header = ["setting", *metrics, "bytes/vector", "texts/s", "seconds"]
    body = [
        [
            r.setting,
            *(f"{r.metrics[m]:.2f}" if m in r.metrics else "" for m in metrics),
            str(r.bytes_per_vector),
            f"{r.texts_per_s:.1f}",
            f"{r.seconds:.1f}",
        ]
        for r in results
    ]
    return header, body


def markdown(results: Sequence[TaskResult], *, plot: Path | None = None) -> str:
    first = results[0]
    header, body = rows(results)
    lines = [
        f"# nestvec eval: {first.task}",
        "",
        f"Data: `{first.dataset}` ({first.examples} examples). Main metric: **{first.main_metric}** (×100).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in body),
    ]
    if plot is not None:
        lines += ["", f"![quality against size and speed]({plot.name})"]
    return "\n".join(lines) + "\n"


def print_table(results: Sequence[TaskResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    first = results[0]
    table = Table(title=f"{first.task} · {first.dataset} · {first.examples} examples · main: {first.main_metric}")
    header, body = rows(results)
    for name in header:
        table.add_column(name, justify="left" if name == "setting" else "right")
    for row in body:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # pipes and CI logs: never squeeze the metric names
    console.print(table)


def plot_tradeoffs(results: Sequence[TaskResult], path: str | Path) -> Path:
    """Main metric against bytes per vector and against encoding throughput, one point per setting."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "eval", "Plotting") from exc
    path = Path(path)
    first = results[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = ((axes[0], "bytes_per_vector", "bytes per vector"), (axes[1], "texts_per_s", "texts/s encoded"))
    for axis, attr, label in panels:
        xs = [float(getattr(r, attr)) for r in results]
        ys = [r.main for r in results]
        axis.scatter(xs, ys, s=40)
        for r, x, y in zip(results, xs, ys, strict=True):
            axis.annotate(r.setting, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if max(xs) > 4 * min(xs):  # a log axis only where the values span a wide range
            axis.set_xscale("log", base=2)
            label += " (log scale)"
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.margins(x=0.15, y=0.1)
        axis.set_xlabel(label)
        axis.set_ylabel(f"{first.main_metric} (×100)")
        axis.grid(True, alpha=0.3)
    fig.suptitle(f"{first.task}: {Path(first.dataset).name}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
