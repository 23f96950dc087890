"""Rendering of evaluation results and trade-off measurements: tables, Markdown, plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nestvec.errors import MissingExtraError
from nestvec.eval.pareto import pareto_front
from nestvec.eval.tasks import TaskResult
from nestvec.eval.tradeoffs import Measurement

MEASURED = ["#", "setting", "quality", "bytes/vec", "RAM MiB", "q/s", "p50 ms", "p99 ms", "build s", "front"]


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
    first = results[0]
    header, body = rows(results)
    _print(f"{first.task} · {first.dataset} · {first.examples} examples · main: {first.main_metric}", header, body)


def measured_rows(rows: Sequence[Measurement]) -> list[list[str]]:
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


def print_measured(rows: Sequence[Measurement], title: str) -> None:
    _print(f"{title} · quality = {rows[0].quality_metric} · * = Pareto front", MEASURED, measured_rows(rows))


def _print(title: str, header: list[str], body: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in header:
        table.add_column(name, justify="left" if name == "setting" else "right")
    for row in body:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # pipes and CI logs: never squeeze the metric names
    console.print(table)


def _short(setting: str, results: Sequence[TaskResult]) -> str:
    """Drop the model name when every point shares it; 'precision=' says nothing a reader needs."""
    models = {r.setting.split(":")[0] for r in results}
    parts = setting.split(":")
    if len(models) == 1:
        parts = parts[1:] or ["float32"]
    return ":".join(p.removeprefix("precision=") for p in parts)


def plot_tradeoffs(results: Sequence[TaskResult], path: str | Path) -> Path:
    """Main metric against bytes per vector and against encoding throughput, one point per setting."""
    plt = _pyplot()
    import matplotlib.ticker

    path = Path(path)
    first = results[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = ((axes[0], "bytes_per_vector", "bytes per vector"), (axes[1], "texts_per_s", "texts/s encoded"))
    for axis, attr, label in panels:
        xs = [float(getattr(r, attr)) for r in results]
        ys = [r.main for r in results]
        axis.scatter(xs, ys, s=40)
        for n, (r, x, y) in enumerate(zip(results, xs, ys, strict=True)):
            offset = (5, 4) if n % 2 == 0 else (5, -11)  # alternate sides so close points stay legible
            axis.annotate(_short(r.setting, results), (x, y), textcoords="offset points", xytext=offset, fontsize=8)
        if attr == "bytes_per_vector":
            on = pareto_front([(-x, y) for x, y in zip(xs, ys, strict=True)])
            front = sorted((i for i in range(len(xs)) if on[i]), key=lambda i: xs[i])
            axis.plot([xs[i] for i in front], [ys[i] for i in front], "--", alpha=0.5, label="Pareto front")
            axis.legend(loc="lower right", fontsize=8)
        if max(xs) > 4 * min(xs):  # a log axis only where the values span a wide range
            axis.set_xscale("log", base=2)
            label += " (log scale)"
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.margins(x=0.15, y=0.1)
        axis.set_xlabel(label)
        axis.set_ylabel(f"{first.main_metric} (×100)")
        axis.grid(True, alpha=0.3)
    return _save(plt, fig, path, f"{first.task}: {Path(first.dataset).name}")


def plot_measured(rows: Sequence[Measurement], path: str | Path, title: str) -> Path:
    """Quality against RAM bytes per vector and against queries/s, the front marked."""
    plt = _pyplot()
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
    return _save(plt, fig, path, f"{title} (numbers are the table's rows)")


def _save(plt: Any, fig: Any, path: Path, title: str) -> Path:
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "eval", "Plotting") from exc
    return plt
