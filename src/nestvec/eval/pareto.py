"""The one Pareto front: what eval's plots and `nestvec plan`'s table both mark."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[Sequence[float]]) -> list[bool]:
    """For each point (objectives all to maximize; negate one to minimize it): whether no other
    point is at least as good in every objective and better in one."""
    return [
        not any(
            all(o >= p for o, p in zip(other, point, strict=True)) and tuple(other) != tuple(point) for other in points
        )
        for point in points
    ]
