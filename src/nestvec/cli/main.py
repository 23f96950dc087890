"""The `nestvec` command: thin typer commands over the library, `--json` on every one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.browse_cmd import collections, get, list_documents, parse_filter
from nestvec.cli.check_cmd import check, repair
from nestvec.cli.common import JsonOpt, emit, run_job
from nestvec.cli.distill_cmd import distill, train_hash
from nestvec.cli.eval_cmd import eval_app
from nestvec.cli.eval_cmd import inspect as inspect_command
from nestvec.cli.export_cmd import export
from nestvec.cli.plan_cmd import compact, plan
from nestvec.cli.recipe_options import RecipeArgs, recipe_options
from nestvec.cli.rerank_cmd import DepthOpt, RerankOpt, rerank
from nestvec.cli.scale_options import (
    ActorsOpt,
    GpusOpt,
    RayOpt,
    ShardRowsOpt,
    StoreAsOpt,
    ThreadsOpt,
    embed_to_shards,
    ray_build,
    scale_options,
    shards_text,
)  # fmt: skip
from nestvec.cli.serve_cmd import keys_app, serve
from nestvec.cli.train_cmd import train
from nestvec.cli.vectors_cmd import vectors_app

app = typer.Typer(
    help="nestvec: embed, store and search text.", no_args_is_help=True, add_completion=False, rich_markup_mode=None
)


def _version(shown: bool) -> None:
    if shown:
        from nestvec._version import __version__

        typer.echo(f"nestvec {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """nestvec: embed, store and search text."""


index_app = typer.Typer(help="Build and manage collections from files.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
app.command("inspect")(inspect_command)
app.command("plan")(plan)
app.command("compact")(compact)
app.command("check")(check)
app.command("repair")(repair)
app.command("serve")(serve)
app.command("distill")(distill)
app.command("train-hash")(train_hash)
app.command("train")(train)
app.command("export")(export)
app.add_typer(vectors_app, name="vectors")
app.add_typer(keys_app, name="keys")
app.command("get")(get)
app.command("list")(list_documents)
app.command("collections")(collections)
app.command("rerank")(rerank)

IdField = Annotated[str, typer.Option("--id-field", help="Field holding each record's id.")]
NoId = Annotated[bool, typer.Option("--no-id", help="Number records by line instead of reading ids.")]
TextField = Annotated[
    list[str] | None,
    typer.Option("--text-field", help="Field(s) holding the text; several are joined by newlines. [default: text]"),
]
SkipEmpty = Annotated[bool, typer.Option("--skip-empty", help="Skip records whose text is empty instead of failing.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Documents per batch (and per transaction).")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]
CacheOpt = Annotated[
    Path | None, typer.Option("--cache", help="Embedding cache folder: texts seen before are looked up, not re-run.")
]


def _read(id_field: str, no_id: bool, text_field: list[str] | None, skip_empty: bool) -> Any:
    """The reading options, for a reader here and for Ray's shards alike."""
    from nestvec.scale.plan import ReadOptions

    return ReadOptions(None if no_id else id_field, tuple(text_field or ["text"]), skip_empty)


def _progress(no_progress: bool) -> bool | None:
    return False if no_progress else None


@app.command()
@recipe_options("encoder")
def embed(
    input: Annotated[Path, typer.Argument(help="Input .jsonl/.csv/.tsv/.txt/.parquet file (or folder, with --ray).")],
    output: Annotated[
        Path, typer.Argument(help="Output .npy (rows in input order) or .parquet (id, embedding); a folder with --ray.")
    ],
    recipe: RecipeArgs,
    id_field: IdField = "id",
    no_id: NoId = False,
    text_field: TextField = None,
    skip_empty: SkipEmpty = False,
    batch_size: BatchOpt = 256,
    no_progress: NoProgress = False,
    cache: CacheOpt = None,
    ray: RayOpt = None,
    actors: ActorsOpt = None,
    threads: ThreadsOpt = 1,
    gpus: GpusOpt = 0.0,
    shard_rows: ShardRowsOpt = 5000,
    store_as: StoreAsOpt = "float32",
    input_type: Annotated[
        str,
        typer.Option(
            "--input-type", help="query or document: which prompt goes before each text (see --query-prompt)."
        ),
    ] = "document",
    as_json: JsonOpt = False,
) -> None:
    """Embed every record of a file into a .npy or .parquet file (or, on Ray, a folder of shards)."""
    from nestvec.encoders import encoder_for
    from nestvec.encoders.prompts import model_prompts, prompted
    from nestvec.io.ingest import embed_file

    run_job(as_json, lambda: _check_input_type(input_type, ray=ray is not None))
    read = _read(id_field, no_id, text_field, skip_empty)
    if ray is not None:
        options = scale_options(ray, actors, threads, gpus, shard_rows, store_as, _progress(no_progress))
        shards = run_job(as_json, lambda: embed_to_shards(input, output, recipe.build(), read, options))
        emit(as_json, shards.to_dict(), shards_text(shards))
        return

    def job() -> Any:
        reader = read.reader(input)
        spec = recipe.build().encoder
        encoder = encoder_for(spec, cache=cache)
        encoder = prompted(encoder, spec.resolved(model_prompts(encoder)).prompt(input_type))
        return embed_file(reader, output, encoder=encoder, batch_size=batch_size, progress=_progress(no_progress))

    report = run_job(as_json, job)
    emit(
        as_json,
        report.to_dict(),
        f"wrote {report.rows} × {report.dim} vectors to {report.path} in {report.seconds:.1f}s",
    )


def _check_input_type(input_type: str, *, ray: bool) -> None:
    from nestvec.encoders.prompts import SIDES
    from nestvec.errors import InputError
    from nestvec.registry import unknown_name_message

    if input_type not in SIDES:
        raise InputError(unknown_name_message("input type", input_type, list(SIDES)))
    if ray and input_type != "document":
        raise InputError("With --ray the shards are documents for a collection; drop --input-type query.")


@index_app.command("build")
@recipe_options("encoder", "vectors", "index", "documents", "bm25")
def index_build(
    input: Annotated[Path, typer.Argument(help="Input .jsonl/.csv/.tsv/.txt/.parquet file.")],
    collection: Annotated[Path, typer.Argument(help="Folder of the new collection (must not exist).")],
    recipe: RecipeArgs,
    id_field: IdField = "id",
    no_id: NoId = False,
    text_field: TextField = None,
    skip_empty: SkipEmpty = False,
    batch_size: BatchOpt = 256,
    no_progress: NoProgress = False,
    cache: CacheOpt = None,
    ray: RayOpt = None,
    actors: ActorsOpt = None,
    threads: ThreadsOpt = 1,
    gpus: GpusOpt = 0.0,
    shard_rows: ShardRowsOpt = 5000,
    as_json: JsonOpt = False,
) -> None:
    """Create a collection from a file (atomically: it appears complete or not at all).

    With --ray the vectors are made on Ray into COLLECTION.shards/ first (a killed build resumes
    from it), then stored without running the model again; the shards go once the collection is whole."""
    from nestvec.encoders import encoder_for
    from nestvec.io.ingest import build_collection

    read = _read(id_field, no_id, text_field, skip_empty)
    if ray is not None:
        options = scale_options(ray, actors, threads, gpus, shard_rows, "float32", _progress(no_progress))
        built = run_job(as_json, lambda: ray_build(input, collection, recipe.build(), read, options))
        emit(as_json, {"collection": str(collection), **built.to_dict()}, _report_text(built, collection))
        return

    def job() -> Any:
        reader = read.reader(input)
        made = recipe.build()
        spec = made.encoder
        encoder = encoder_for(spec, cache=cache)
        return build_collection(
            reader, collection, model=encoder, recipe=made, batch_size=batch_size, progress=_progress(no_progress)
        )

    report = run_job(as_json, job)
    emit(as_json, {"collection": str(collection), **report.to_dict()}, _report_text(report, collection))


@app.command()
def add(
    collection: Annotated[Path, typer.Argument(help="Existing collection folder.")],
    input: Annotated[
        Path, typer.Argument(help="Input .jsonl/.csv/.tsv/.txt/.parquet file, or a folder of shards from embed --ray.")
    ],
    upsert: Annotated[bool, typer.Option("--upsert", help="Replace documents whose id is already stored.")] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave documents whose id is already stored (resume an add).")
    ] = False,
    vectors: Annotated[
        Path | None,
        typer.Option(
            "--vectors", help="Their vectors, made by the collection's model: .npy (input order) or .parquet."
        ),
    ] = None,
    id_field: IdField = "id",
    no_id: NoId = False,
    text_field: TextField = None,
    skip_empty: SkipEmpty = False,
    batch_size: BatchOpt = 256,
    no_progress: NoProgress = False,
    cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add (or upsert) a file's records to a collection."""
    from nestvec.io.ingest import add_file
    from nestvec.store import Collection

    def job() -> Any:
        _check_order(collection, input)
        if input.is_dir():  # shards: stored as they are, the model not run
            from nestvec.scale import ingest_shards

            with Collection.open(collection) as coll:
                return ingest_shards(coll, input, upsert=upsert)
        reader = _read(id_field, no_id, text_field, skip_empty).reader(input)
        with Collection.open(collection, cache=cache) as coll:
            return add_file(
                coll, reader, upsert=upsert, skip_existing=skip_existing, vectors=vectors, batch_size=batch_size,
                progress=_progress(no_progress),
            )  # fmt: skip

    report = run_job(as_json, job)
    emit(as_json, {"collection": str(collection), **report.to_dict()}, _report_text(report, collection))


def _check_order(collection: Path, input: Path) -> None:
    """`index build INPUT COLLECTION` but `add COLLECTION INPUT`: name the swap when it happened."""
    from nestvec.errors import InputError
    from nestvec.store.folder import STORE_FILE

    if not (collection / STORE_FILE).is_file() and (input / STORE_FILE).is_file():
        raise InputError(
            f"{input} is the collection and {collection} is not one: add takes COLLECTION then INPUT "
            f"(nestvec add {input} {collection})."
        )


def _report_text(report: Any, collection: Path) -> str:
    return (
        f"{collection}: {report.added} added, {report.updated} updated, {report.skipped} skipped, "
        f"{report.truncated} truncated, {report.chunks} chunks in {report.seconds:.1f}s"
    )


@app.command()
@recipe_options("search")
def search(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    query: Annotated[str, typer.Argument(help="Query text.")],
    recipe: RecipeArgs,
    k: Annotated[int, typer.Option("-k", "--k", help="Number of documents to return.")] = 10,
    filter: Annotated[
        str | None, typer.Option("--filter", help='Metadata filter as JSON, e.g. \'{"year": {"$gte": 2020}}\'.')
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model to query with; must match the collection's.")
    ] = None,
    rerank: RerankOpt = None,
    rerank_depth: DepthOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """Search a collection; prints the best documents first."""
    from nestvec.store import Collection

    def job() -> Any:
        spec = parse_filter(filter)
        mode, fusion = recipe.search()
        with Collection.open(collection, model=model) as coll:
            start = time.perf_counter()
            hits = coll.search(
                query, k=k, filter=spec, mode=mode, fusion=fusion, rerank=rerank, rerank_depth=rerank_depth
            )
            return hits, time.perf_counter() - start

    hits, seconds = run_job(as_json, job)
    lines = [line for i, h in enumerate(hits, 1) for line in _hit_lines(i, h)]
    emit(
        as_json,
        {"query": query, "seconds": seconds, "hits": [h.to_dict() for h in hits]},
        "\n".join(lines) or "(no hits)",
    )


def _hit_lines(rank: int, hit: Any) -> list[str]:
    """The hit, then what else it carries: its metadata and, for a long document, the chunk that matched."""
    title = hit.metadata.get("title")
    head = str(title) if title else hit.text.strip().split("\n", 1)[0][:100]
    lines = [f"{rank}. [{hit.score:.3f}] {hit.id}  {head}"]
    shown = [f"{k}={json.dumps(v, ensure_ascii=False)[:60]}" for k, v in hit.metadata.items() if k != "title"]
    if hit.chunk is not None:
        shown.append(f"chunk {hit.chunk.number} (characters {hit.chunk.start}–{hit.chunk.end})")
    if shown:
        lines.append("   " + "  ".join(shown))
    return lines


@app.command()
def info(collection: Annotated[Path, typer.Argument(help="Collection folder.")], as_json: JsonOpt = False) -> None:
    """Show a collection's size, model and recipe."""
    from dataclasses import asdict

    from nestvec.store import Collection

    def job() -> Any:
        with Collection.open(collection) as coll:
            return coll.info()

    data = run_job(as_json, job)
    text = "\n".join(f"{key}: {value}" for key, value in asdict(data).items() if key != "recipe")
    emit(as_json, asdict(data), text)


@app.command()
def delete(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    ids: Annotated[list[str], typer.Argument(help="Ids of the documents to delete.")],
    as_json: JsonOpt = False,
) -> None:
    """Delete documents by id (unknown ids are reported, not an error)."""
    from nestvec.store import Collection

    def job() -> Any:
        with Collection.open(collection) as coll:
            return coll.delete(ids)

    deleted = run_job(as_json, job)
    missing = [i for i in ids if i not in set(deleted)]
    emit(as_json, {"deleted": deleted, "not_found": missing}, f"deleted {len(deleted)}; not found: {len(missing)}")


def main() -> None:
    app(prog_name="nestvec")


if __name__ == "__main__":
    main()
