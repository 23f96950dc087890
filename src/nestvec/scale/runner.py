"""The driver: plan the shards, run the missing ones on a Ray Data actor pool, record each.

Ray Data schedules; nestvec's readers parse. The dataset is the list of shards still to do,
mapped by `ShardEmbedder` actors (`map_batches`, one shard per call, the model loaded once per
actor, `threads` CPUs — or `gpus` — each). Actors are restarted and their tasks retried when a
worker dies, and a retried shard rewrites the same file, so no id is lost or written twice.
Without an address the job starts a local Ray runtime on this machine's CPUs (and stops it);
`auto` or `HOST:PORT` joins a running cluster, whose nodes must see the input and output paths.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nestvec.encoders.base import progress_bar
from nestvec.errors import InputError, MissingExtraError
from nestvec.recipe import Recipe
from nestvec.registry import unknown_name_message
from nestvec.scale.plan import ReadOptions, input_files, plan_shards
from nestvec.scale.shards import STORE_AS, Manifest


@dataclass(frozen=True)
class ScaleOptions:
    ray: str = "local"  # local (a runtime on this machine), auto (the running cluster) or HOST:PORT
    actors: int | None = None  # default: the cluster's CPUs (GPUs, with `gpus`) / per actor
    threads: int = 1  # CPUs (and model threads) per actor
    gpus: float = 0.0  # GPUs per actor
    rows: int = 5_000  # records per shard
    store_as: str = "float32"
    batch_size: int = 64
    progress: bool | None = None


@dataclass(frozen=True)
class ShardReport:
    folder: str
    shards: int
    skipped: int  # shards a previous run finished, checksums matching
    rows: int
    chunks: int
    dim: int
    actors: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def embed_shards(
    inputs: Sequence[str | Path], folder: str | Path, *, recipe: Recipe, read: ReadOptions, options: ScaleOptions
) -> ShardReport:
    """Embed `inputs` (files or folders) into Parquet shards in `folder`, resuming a killed run."""
    from nestvec.encoders import encoder_for

    if options.store_as not in STORE_AS:
        raise InputError(unknown_name_message("--store-as", options.store_as, list(STORE_AS)))
    if options.threads < 1 or options.gpus < 0 or (options.actors is not None and options.actors < 1):
        raise InputError("Actors need at least one thread and a non-negative GPU share; at least one actor.")
    ray = _ray()
    start = time.perf_counter()
    target = Path(folder).expanduser().resolve()
    if target.suffix.lower() in (".npy", ".parquet"):
        raise InputError(f"With --ray the output is a folder of Parquet shards; give a folder path, not {target.name}.")
    plan = plan_shards(input_files(inputs), read, rows=options.rows)  # bad input fails before Ray starts
    from nestvec.encoders.prompts import model_prompts

    encoder = encoder_for(recipe.encoder)
    bound = recipe.bound(encoder.identity, prompts=model_prompts(encoder))
    header = {"fingerprint": plan.fingerprint, "recipe": bound.to_dict(), "store_as": options.store_as}
    started = _connect(ray, options.ray)  # an unreachable cluster fails before the folder is made
    try:
        manifest = Manifest.start(target, {**header, "shards": len(plan.shards), "rows": plan.rows})
        skipped = len(manifest.finished)
        todo = [s for s in plan.shards if s.index not in manifest.finished]
        actors = options.actors or _default_actors(ray, options)
        if todo:
            _run(ray, todo, manifest, bound, read, options, actors, plan.rows)
    finally:
        if started:
            ray.shutdown()
    entries = manifest.finished.values()
    return ShardReport(
        str(target), len(plan.shards), skipped, sum(int(e["rows"]) for e in entries),
        sum(int(e["chunks"]) for e in entries), bound.identity.dim if bound.identity else 0, actors,
        round(time.perf_counter() - start, 2),
    )  # fmt: skip


def _run(
    ray: Any, todo: list[Any], manifest: Manifest, recipe: Recipe, read: ReadOptions, options: ScaleOptions,
    actors: int, total: int,
) -> None:  # fmt: skip
    from nestvec.scale.worker import ShardEmbedder

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-dataset INFO lines are not the user's
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts records; Ray's would count blocks
    # the longest shards first, so that no actor is left with a long one while the others idle
    ordered = sorted(todo, key=lambda s: -s.chars)
    dataset = ray.data.from_items([{"spec": s.to_json()} for s in ordered], override_num_blocks=len(todo))
    # Ray Data's actor pools restart a killed actor and retry its shard (max_restarts=-1 by default)
    mapped = dataset.map_batches(
        ShardEmbedder,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=min(actors, len(todo))),
        fn_constructor_kwargs={
            "recipe": recipe.to_dict(), "read": asdict(read), "folder": str(manifest.folder),
            "store_as": options.store_as, "threads": options.threads, "batch_size": options.batch_size,
            "device": "cuda" if options.gpus else None,
        },
        num_cpus=options.threads,
        num_gpus=options.gpus or None,
    )  # fmt: skip
    done = total - sum(s.rows for s in todo)
    with progress_bar(total, options.progress, unit="doc", initial=done) as bar:
        for row in mapped.iter_rows():
            entry = json.loads(row["result"])
            manifest.record(entry)
            bar.update(int(entry["rows"]))


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", "Embedding on Ray (--ray)") from exc
    return ray


def _connect(ray: Any, address: str) -> bool:
    """Join or start Ray; True when this job started the runtime (and so stops it)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address not in ("local", "auto"):
        _reachable(address)  # Ray itself waits minutes for a GCS that is not there
    try:
        if address == "local":
            ray.init(num_cpus=os.cpu_count() or 1, **quiet)
        else:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except ray.exceptions.AuthenticationError as exc:
        raise InputError(
            f"The Ray cluster at {address!r} refused this job's token ({str(exc)[:120]}). It uses token "
            "authentication: set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN (or a file in "
            "RAY_AUTH_TOKEN_PATH) for this command, as on every node."
        ) from exc
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(
            f"Could not reach a Ray cluster at {address!r} ({str(exc)[:200]}). Start one with `ray start --head`, "
            "pass its HOST:PORT, or use --ray local for a runtime on this machine. A cluster with token "
            "authentication also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN for this command."
        ) from exc
    return True


def _reachable(address: str) -> None:
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(
            f"--ray takes local, auto or HOST:PORT (the head's GCS port, 6379 by default); got {address!r}."
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(
            f"Could not reach a Ray cluster at {address!r} ({exc.strerror or exc}). Start one with `ray start --head`, "
            "pass its HOST:PORT, or use --ray local for a runtime on this machine."
        ) from exc


def _default_actors(ray: Any, options: ScaleOptions) -> int:
    resources = ray.cluster_resources()
    if options.gpus:
        return max(1, int(resources.get("GPU", 0) // options.gpus))
    return max(1, int(resources.get("CPU", 1) // options.threads))
