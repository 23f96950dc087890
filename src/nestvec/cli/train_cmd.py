"""`nestvec train`: thin over nestvec.train.finetune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job


def train(
    output: Annotated[Path, typer.Argument(help="Folder for the fine-tuned model (must not exist; reused to resume).")],
    data: Annotated[
        list[Path],
        typer.Option("--data", "-d", help="Training file (.jsonl/.csv/.tsv/.parquet/.txt); repeat to mix sets."),
    ],
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="pairs (anchor, positive, negatives), scored (STS), text or ranked (anchor, passages, scores); "
            "one, or one per --data.",
        ),
    ] = None,
    base: Annotated[str, typer.Option("--base", "-m", help="Model to start from: name or folder.")] = "minilm",
    loss: Annotated[
        list[str] | None,
        typer.Option(
            "--loss", help="mnrl, cached-mnrl, cosent, simcse, mse, similarity or listwise; one, or one per --data."
        ),
    ] = None,
    teacher: Annotated[
        str | None, typer.Option("--teacher", help="The mse and similarity losses' teacher: name or folder.")
    ] = None,
    dims: Annotated[str | None, typer.Option("--dims", help="Matryoshka ladder, e.g. 384,256,128,64,32.")] = None,
    two_d: Annotated[bool, typer.Option("--2d", help="2D Matryoshka: train shallow layers too.")] = False,
    starbucks: Annotated[bool, typer.Option("--starbucks", help="The Starbucks (layers, dims) ladder.")] = False,
    ladder: Annotated[
        str | None, typer.Option("--ladder", help="Starbucks pairs LAYERS:DIMS, e.g. 1:32,2:64,3:128,6:384.")
    ] = None,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Start from the principal axes of the training texts (for --dims).")
    ] = False,
    epochs: Annotated[float, typer.Option("--epochs", min=0.01, help="Passes over the data.")] = 1.0,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Stop after this many steps.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, help="Texts per batch.")] = 32,
    batches: Annotated[
        str,
        typer.Option(
            "--batches", help="random, or clustered: in-batch negatives drawn from k-means clusters (harder)."
        ),
    ] = "random",
    mini_batch: Annotated[int, typer.Option("--mini-batch", min=1, help="cached-mnrl's chunk size.")] = 16,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate.")] = 2e-5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the data order, dropout and init.")] = 0,
    base_weight: Annotated[
        float,
        typer.Option(
            "--base-weight", min=0.0, max=1.0, help="WiSE-FT: mix this fraction of the base's weights back in."
        ),
    ] = 0.0,
    dev: Annotated[Path | None, typer.Option("--dev", help="STS file scored during training (keeps the best).")] = None,
    negatives: Annotated[
        int, typer.Option("--negatives", min=0, help="Hard negatives to mine per pair with the base model.")
    ] = 0,
    skip_top: Annotated[int, typer.Option("--skip-top", min=0, help="Nearest texts skipped when mining.")] = 3,
    margin: Annotated[
        float, typer.Option("--margin", min=0.0, max=1.0, help="Negatives score below (1-m)·positive.")
    ] = 0.05,
    save_steps: Annotated[int, typer.Option("--save-steps", min=1, help="Steps between checkpoints.")] = 100,
    eval_steps: Annotated[int, typer.Option("--eval-steps", min=1, help="Steps between dev evaluations.")] = 100,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: cpu).")] = None,
    pooling: Annotated[
        str | None, typer.Option("--pooling", help="Decoder models: last, mean, prompteol, echo or prepend.")
    ] = None,
    layers: Annotated[
        int | None, typer.Option("--layers", min=1, help="Decoder models: train the first L layers.")
    ] = None,
    lora_rank: Annotated[int, typer.Option("--lora-rank", min=1, help="Decoder models: LoRA's rank.")] = 16,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune an encoder (contrastive, CoSENT, SimCSE; Matryoshka and 2D nesting) on your data."""
    from dataclasses import asdict

    from nestvec.errors import InputError
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    def job() -> Any:
        try:
            widths = tuple(int(d) for d in dims.split(",")) if dims else ()
        except ValueError as exc:
            raise InputError(f"--dims takes comma-separated integers, e.g. 384,128,64; got {dims!r}.") from exc
        pairs = _pairs(ladder) if ladder else ()
        kinds = _each(kind or ["pairs"], len(data), "--kind")
        losses = tuple(_each(loss or ["mnrl"], len(data), "--loss"))
        config = FinetuneConfig(
            loss=losses, dims=widths or tuple(sorted({d for _, d in pairs}, reverse=True)), two_d=two_d,
            starbucks=starbucks or bool(pairs), ladder=pairs, epochs=epochs, max_steps=steps, batch_size=batch_size,
            batches=batches,
            mini_batch=mini_batch, learning_rate=lr, seed=seed, base_weight=base_weight, rotate=rotate, teacher=teacher,
            dev=dev,
            eval_steps=eval_steps, save_steps=save_steps, device=device, progress=not as_json, pooling=pooling,
            layers=layers, lora_rank=lora_rank,
        )  # fmt: skip
        training = [read_training(path, k) for path, k in zip(data, kinds, strict=True)]
        if negatives:
            from nestvec.encoders import load_encoder
            from nestvec.train.negatives import mine_negatives

            encoder = load_encoder(base, pooling=pooling, layers=layers)  # mined as the model being trained embeds
            training = [
                mine_negatives(t, encoder, count=negatives, skip_top=skip_top, margin=margin, seed=seed)
                if t.kind == "pairs"
                else t
                for t in training
            ]
        return asdict(finetune(base, output, training, config=config))

    report = run_job(as_json, job)
    dev_line = ", ".join(f"{k} {v:.2f}" for k, v in report["dev"].items())
    resumed = f" (resumed from {report['resumed_from']})" if report["resumed_from"] else ""
    emit(
        as_json,
        report,
        f"trained {report['output']}: {report['steps']} steps in {report['seconds']:.0f} s{resumed}, "
        f"loss {report['train_loss']:.4f}" + (f"; dev {dev_line}" if dev_line else ""),
    )


def _each(values: list[str], count: int, flag: str) -> list[str]:
    """One value for every --data, or one per --data."""
    from nestvec.errors import InputError

    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise InputError(
            f"{flag} was given {len(values)} times for {count} --data files; give it once or once per file."
        )
    return values


def _pairs(text: str) -> tuple[tuple[int, int], ...]:
    from nestvec.errors import InputError

    try:
        return tuple((int(a), int(b)) for a, b in (pair.split(":") for pair in text.split(",")))
    except ValueError as exc:
        raise InputError(f"--ladder takes LAYERS:DIMS pairs, e.g. 1:32,3:128,6:384; got {text!r}.") from exc
