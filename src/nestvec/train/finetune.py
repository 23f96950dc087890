"""`nestvec train`: fine-tune a sentence-transformers encoder with sentence-transformers' trainer.

The run is a job: checkpoints go to `<output>.checkpoints/` every `save_steps`, a run started
again with the same output resumes from the last one (after a crash or a kill), the best
checkpoint by the dev metric is kept, and the finished model lands in `output` whole (written
beside it, then renamed) with a training record in its config_sentence_transformers.json: the
data files and their sha256, the loss, the dims ladder, steps, seed and dev results.

Several data sets train together (sentence-transformers' multi-dataset training: each batch comes
from one set, in proportion to its size, under that set's loss), e.g. CoSENT on STS pairs beside
in-batch negatives on query→passage pairs, so that fitting one task does not cost the other.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nestvec._version import __version__
from nestvec.devices import check_device
from nestvec.errors import InputError, MissingExtraError
from nestvec.files import check_creatable, write_folder_whole
from nestvec.train.data import TrainingData
from nestvec.train.losses import DATA_FOR, IN_BATCH, TAUGHT, build_loss

RECORD_KEY = "nestvec_training"
BATCHES = ("random", "clustered")  # how in-batch sets are batched: see train/batches.py


@dataclass(frozen=True)
class FinetuneConfig:
    loss: str | tuple[str, ...] = "mnrl"  # one loss, or one per data set
    dims: tuple[int, ...] = ()  # a Matryoshka ladder, e.g. (384, 256, 128, 64, 32)
    two_d: bool = False  # Matryoshka2dLoss: shallow layers too
    starbucks: bool = False  # the Starbucks ladder of (layers, dims) pairs
    ladder: tuple[tuple[int, int], ...] = ()  # Starbucks pairs, e.g. ((1, 32), (3, 128), (6, 384))
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 32
    batches: str = "random"  # "clustered": in-batch sets batched by k-means clusters (train/batches.py)
    mini_batch: int = 16  # cached-mnrl's GradCache chunk
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    seed: int = 0
    base_weight: float = 0.0  # WiSE-FT: the saved weights are (1-w)·tuned + w·base
    rotate: bool = False  # start from the principal axes of the training texts (train/rotation.py)
    teacher: str | None = None  # the distillation losses' teacher (mse, similarity): a name or folder
    dev: Path | None = None  # an STS file or a BEIR folder scored during training; the best checkpoint is kept
    eval_steps: int = 100
    save_steps: int = 100
    device: str | None = None
    progress: bool = True
    # decoder LLMs (smollm2, a causal-LM folder or GGUF file) train a LoRA adapter, for this pooling and layer cut
    pooling: str | None = None
    layers: int | None = None
    lora_rank: int = 16


@dataclass(frozen=True)
class FinetuneReport:
    output: str
    steps: int
    seconds: float
    train_loss: float
    resumed_from: str | None
    dev: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)  # the training loss as logged, step by step


def finetune(
    base: str | Path, output: str | Path, data: TrainingData | Sequence[TrainingData], *, config: FinetuneConfig
) -> FinetuneReport:
    """Fine-tune `base` (a registered name or folder) on `data` (one set or several, each under
    its own loss: `config.loss` names one per set); the model is written to `output`."""
    from nestvec.encoders import resolve_model
    from nestvec.encoders.kinds import kind_of
    from nestvec.encoders.transformer.folder import read_st_folder

    sets = [data] if isinstance(data, TrainingData) else list(data)
    pairs = _paired(sets, config.loss)
    if not 0.0 <= config.base_weight <= 1.0:
        raise InputError(f"base_weight is a fraction in [0, 1]; got {config.base_weight}.")
    if config.rotate and config.base_weight:
        raise InputError(
            "A rotated model has a layer its base lacks, so their weights cannot be mixed; "
            "drop --rotate or --base-weight."
        )
    if config.rotate and "mse" in ((config.loss,) if isinstance(config.loss, str) else config.loss):
        raise InputError(
            "The mse loss matches the teacher's coordinates, which a rotation moves; "
            "use the similarity loss with --rotate (it matches cosines, which a rotation keeps)."
        )
    _check_batches(pairs, config.batches)
    if config.dev is not None and config.save_steps % config.eval_steps:
        raise InputError(
            f"With a dev set, save_steps ({config.save_steps}) must be a multiple of eval_steps "
            f"({config.eval_steps}), so that every checkpoint is scored and the best one can be kept."
        )
    target = Path(output).expanduser().resolve()
    if target.exists():
        raise InputError(
            f"{target} already exists; choose a new output folder (a run to resume writes to the same one)."
        )
    check_creatable(target)
    check_device(config.device)
    folder = resolve_model(base)[1]
    decoder = kind_of(folder) == "decoder"
    if decoder:
        _check_decoder_config(config)
    elif config.pooling is not None or config.layers is not None:
        raise InputError("pooling and layers are trained for decoder models (e.g. --base smollm2); "
                         f"{base} is a {kind_of(folder)} model. Drop them.")  # fmt: skip
    pairs = _taught(pairs, config.teacher)
    checkpoints = target.with_name(target.name + ".checkpoints")
    try:
        model = _decoder_model(str(base), config) if decoder else _st_model(read_st_folder(folder).root, pairs, config)
        trainer, evaluator = _trainer(model, pairs, config, checkpoints)
    except ValueError as exc:  # transformers' and sentence-transformers' checks of the arguments
        raise InputError(f"Training settings refused: {exc}") from exc
    resume = _last_checkpoint(checkpoints)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    if config.base_weight:
        from nestvec.train.interpolate import mix_weights

        mix_weights(trainer.model, folder, base_weight=config.base_weight)
    dev = {k: float(v) for k, v in evaluator(trainer.model).items()} if evaluator is not None else {}
    steps, loss = int(result.global_step), float(result.training_loss)
    record: dict[str, Any] = {
        "nestvec_version": __version__,
        "base": str(base),
        "data": [{**d.record(), "loss": name} for d, name in pairs],
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "steps": steps,
        "train_loss": loss,
        "dev": dev,
        "seconds": round(seconds, 1),
        "resumed_from": resume.name if resume else None,
    }
    if decoder:
        from nestvec.train.decoder import save_adapter

        save_adapter(trainer.model, target, record)
    else:
        _save(trainer.model, target, record)
    shutil.rmtree(checkpoints, ignore_errors=True)
    losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
    return FinetuneReport(
        str(target), record["steps"], seconds, record["train_loss"], record["resumed_from"], dev, losses
    )


def _paired(sets: list[TrainingData], loss: str | tuple[str, ...]) -> list[tuple[TrainingData, str]]:
    """Each data set with its loss, checked: the loss must take that set's shape."""
    names = (loss,) * len(sets) if isinstance(loss, str) else tuple(loss)
    if not sets or len(names) != len(sets):
        raise InputError(f"Give one loss per data set: {len(sets)} data sets, {len(names)} losses ({list(names)}).")
    for data, name in zip(sets, names, strict=True):
        if DATA_FOR.get(name, data.kind) != data.kind:
            raise InputError(f"The {name} loss trains on {DATA_FOR[name]} data; {data.path} was read as {data.kind}.")
    return list(zip(sets, names, strict=True))


def _check_batches(pairs: list[tuple[TrainingData, str]], batches: str) -> None:
    from nestvec.registry import unknown_name_message

    if batches not in BATCHES:
        raise InputError(unknown_name_message("batch order", batches, list(BATCHES)))
    if batches == "clustered" and not any(name in IN_BATCH for _, name in pairs):
        raise InputError(
            f"Clustered batches give in-batch negatives their neighbours; none of the losses here "
            f"({', '.join(name for _, name in pairs)}) uses in-batch negatives ({', '.join(IN_BATCH)}). "
            "Drop --batches clustered."
        )


def _taught(pairs: list[tuple[TrainingData, str]], teacher: str | None) -> list[tuple[TrainingData, str]]:
    """The distillation sets (mse, similarity) with their teacher's vectors as labels."""
    from nestvec.train.teacher import with_teacher

    if teacher is not None and all(name not in TAUGHT for _, name in pairs):
        raise InputError(
            "A teacher is used only by the distillation losses (mse, similarity); add one or drop --teacher."
        )
    return [(with_teacher(d, teacher, loss=name) if name in TAUGHT else d, name) for d, name in pairs]


def _check_decoder_config(config: FinetuneConfig) -> None:
    """What a LoRA fine-tune of a decoder cannot do, refused before anything loads."""
    refused = [
        name
        for name, used in (("--2d", config.two_d), ("--starbucks/--ladder", config.starbucks or config.ladder),
                           ("--rotate", config.rotate), ("--base-weight", config.base_weight))
        if used
    ]  # fmt: skip
    if refused:
        raise InputError(
            f"{', '.join(refused)} cannot train a decoder model: it trains a LoRA adapter, which keeps the base "
            "weights as they are (a --dims ladder works). Drop those options."
        )
    if config.lora_rank < 1:
        raise InputError(f"lora_rank is a positive integer (8-64 is usual); got {config.lora_rank}.")


def _sentence_transformers() -> Any:
    try:
        import sentence_transformers
    except ImportError as exc:
        raise MissingExtraError("sentence_transformers", "train", "nestvec train") from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return sentence_transformers


def _st_model(folder: Path, pairs: list[tuple[TrainingData, str]], config: FinetuneConfig) -> Any:
    model = _sentence_transformers().SentenceTransformer(str(folder), device=config.device or "cpu")
    if config.rotate:  # the same texts and seed give the same rotation, so a resumed run matches its checkpoints
        from nestvec.train.rotation import add_rotation, rotation_texts

        model = add_rotation(model, rotation_texts([d for d, _ in pairs], seed=config.seed))
    return model


def _decoder_model(base: str, config: FinetuneConfig) -> Any:
    try:
        import peft  # noqa: F401 (checked before the model loads)
    except ImportError as exc:
        raise MissingExtraError("peft", "decoder", "Training a decoder model (a LoRA adapter)") from exc
    _sentence_transformers()
    import torch

    from nestvec.train.decoder import decoder_model

    torch.manual_seed(config.seed)  # LoRA's initial matrices, so a run and its resumption start alike
    device = config.device or "cpu"
    return decoder_model(base, pooling=config.pooling, layer=config.layers, rank=config.lora_rank, device=device)


def _trainer(
    model: Any, pairs: list[tuple[TrainingData, str]], config: FinetuneConfig, checkpoints: Path
) -> tuple[Any, Any]:
    _sentence_transformers()
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from nestvec.train.evaluators import dev_evaluator

    built = [
        build_loss(
            model,
            name,
            dims=config.dims,
            two_d=config.two_d,
            starbucks=config.starbucks,
            pairs=config.ladder,
            mini_batch=config.mini_batch,
        )
        for _, name in pairs
    ]
    sets = [_ordered(model, d, name, config) for d, name in pairs]
    if len(pairs) == 1:
        dataset, loss = sets[0], built[0]
    else:  # named by position: two files may share a stem
        from datasets import DatasetDict

        keys = [f"{i}-{d.path.stem}" for i, (d, _) in enumerate(pairs)]
        dataset = DatasetDict(dict(zip(keys, sets, strict=True)))
        loss = dict(zip(keys, built, strict=True))
    evaluator = dev_evaluator(config.dev, dims=config.dims) if config.dev else None
    cuda = (config.device or "cpu").startswith("cuda")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a fraction of the steps
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if evaluator else "no",
        eval_steps=config.eval_steps,
        load_best_model_at_end=evaluator is not None,
        metric_for_best_model=f"eval_{evaluator.name}_{evaluator.primary_metric}" if evaluator else None,
        logging_steps=max(1, config.save_steps // 4),
        report_to="none",
        disable_tqdm=not config.progress,
        use_cpu=not cuda,
        bf16=cuda and _bf16(),
        fp16=cuda and not _bf16(),  # older GPUs: fp16 autocast with loss scaling
        batch_sampler=_sampler(pairs, config.batches),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator)
    if not config.progress:  # quiet means quiet: without a bar, transformers prints every log line to stdout
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer, evaluator


def _ordered(model: Any, data: TrainingData, loss: str, config: FinetuneConfig) -> Any:
    """The set as the trainer reads it: in clustered order, shuffled, or as read (random batches)."""

    if config.batches == "random":
        return data.dataset()
    if loss not in IN_BATCH:  # read in order beside the clustered sets, so shuffled here
        return data.dataset().shuffle(seed=config.seed)
    from nestvec.train.batches import clustered_dataset

    rows = config.max_steps * config.batch_size if config.max_steps else None
    return clustered_dataset(data, model, batch_size=config.batch_size, seed=config.seed, rows=rows)


def _sampler(pairs: list[tuple[TrainingData, str]], batches: str) -> Any:
    from sentence_transformers.base.sampler import BatchSamplers

    if batches == "clustered":
        from nestvec.train.batches import InOrderBatchSampler

        return InOrderBatchSampler
    # in-batch negatives must not meet their own text
    in_batch = any(name in IN_BATCH for _, name in pairs)
    return BatchSamplers.NO_DUPLICATES if in_batch else BatchSamplers.BATCH_SAMPLER


def _bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def _last_checkpoint(checkpoints: Path) -> Path | None:
    """The newest whole checkpoint; one cut off by a kill while it was written is removed.

    The trainer writes `trainer_state.json` last and not atomically, so a checkpoint counts as
    whole only when that file is there and parses.
    """
    numbered = [p for p in checkpoints.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for folder in sorted(numbered, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if checkpoint_is_whole(folder):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
    return None


def checkpoint_is_whole(checkpoint: Path) -> bool:
    """Its trainer_state.json, written last and not atomically, is there and parses."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def _save(model: Any, target: Path, record: dict[str, Any]) -> None:
    """Beside the target, then renamed: `output` is a whole model or absent."""

    def write(folder: Path) -> None:
        model.save(str(folder))
        config_path = folder / "config_sentence_transformers.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        config[RECORD_KEY] = record
        config_path.write_text(json.dumps(config, indent=2) + "\n")

    write_folder_whole(target, write)
