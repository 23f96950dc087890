"""Reading a collection without a query: `get` by id, `list` with a filter and paging, `collections`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job
from nestvec.errors import InputError


def get(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    ids: Annotated[list[str], typer.Argument(help="Ids of the documents to show.")],
    as_json: JsonOpt = False,
) -> None:
    """Show stored documents by id (unknown ids are reported, not an error)."""
    from nestvec.store import Collection

    def job() -> Any:
        with Collection.open(collection) as coll:
            return coll.get(ids)

    found = run_job(as_json, job)
    missing = [i for i in ids if i not in {d.id for d in found}]
    data = {"documents": [_doc(d) for d in found], "not_found": missing}
    text = "\n".join(_text(d) for d in found) + (f"\nnot found: {', '.join(missing)}" if missing else "")
    emit(as_json, data, text.strip() or "(none found)")


def list_documents(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    filter: Annotated[str | None, typer.Option("--filter", help="Metadata filter as JSON (as for search).")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Documents to skip (by id order).")] = 0,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Documents to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List stored documents by id, optionally filtered, a page at a time."""
    from nestvec.store import Collection

    def job() -> Any:
        spec = parse_filter(filter)
        with Collection.open(collection) as coll:
            return coll.documents(filter=spec, offset=offset, limit=limit)

    docs = run_job(as_json, job)
    following = offset + len(docs) if len(docs) == limit else None
    data = {"documents": [_doc(d) for d in docs], "offset": offset, "next_offset": following}
    more = f"\n(more: --offset {following})" if following is not None else ""
    emit(as_json, data, ("\n".join(_text(d) for d in docs) or "(no documents)") + more)


def collections(
    folder: Annotated[Path, typer.Argument(help="A folder holding collections (e.g. a server's --data-dir).")],
    as_json: JsonOpt = False,
) -> None:
    """List the collections in a folder, with their size and model."""
    from nestvec.store import Collection
    from nestvec.store.folder import STORE_FILE

    def job() -> Any:
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder.")
        found = []
        for path in sorted(p for p in folder.iterdir() if (p / STORE_FILE).is_file() and not p.name.startswith(".")):
            with Collection.open(path) as coll:
                info = coll.info()
            found.append({"name": path.name, "documents": info.documents, "model": info.model, "index": info.index})
        return found

    found = run_job(as_json, job)
    lines = [f"{c['name']}: {c['documents']} documents, {c['model']}, {c['index']}" for c in found]
    emit(as_json, {"collections": found}, "\n".join(lines) or f"(no collections in {folder})")


def parse_filter(text: str | None) -> dict[str, Any] | None:
    try:
        return json.loads(text) if text is not None else None
    except json.JSONDecodeError as exc:
        raise InputError(f"--filter must be JSON, got {text!r} ({exc.msg}).") from exc


def _doc(doc: Any) -> dict[str, Any]:
    return {"id": doc.id, "text": doc.text, "metadata": doc.metadata}


def _text(doc: Any) -> str:
    meta = "  ".join(f"{k}={json.dumps(v, ensure_ascii=False)[:60]}" for k, v in doc.metadata.items())
    first = doc.text.strip().split("\n", 1)[0][:100]
    return f"{doc.id}  {first}" + (f"\n   {meta}" if meta else "")
