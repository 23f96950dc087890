"""`nestvec serve` and `nestvec keys`: thin over nestvec.serve."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

import typer

from nestvec.cli.common import JsonOpt, emit, run_job
from nestvec.errors import InputError

keys_app = typer.Typer(
    help="Create, list and revoke API keys for nestvec serve.", no_args_is_help=True, rich_markup_mode=None
)
KeysFile = Annotated[Path, typer.Argument(help="The keys file (JSON of hashed keys; created if missing).")]


def serve(
    collections: Annotated[
        list[Path] | None, typer.Argument(help="Collection folders to serve (by folder name).")
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model for /v1/embeddings.")] = "minilm",
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder for collections created over HTTP (also served).")
    ] = None,
    keys: Annotated[Path | None, typer.Option("--keys", help="API keys file; requests then need a key.")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without keys on a non-loopback host.")] = False,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="Allow browser calls from this origin (repeatable).")
    ] = None,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Encode each request on its own.")] = False,
    max_batch_tokens: Annotated[int, typer.Option("--max-batch-tokens", min=1, help="Token budget per batch.")] = 8192,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", min=0.0, help="Longest wait to fill a batch.")] = 5.0,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", min=0.001, help="Largest request body.")] = 8.0,
    max_texts: Annotated[int, typer.Option("--max-texts", min=1, help="Texts or documents per request.")] = 2048,
    max_chars: Annotated[int, typer.Option("--max-chars", min=1, help="Characters per text.")] = 100_000,
    timeout: Annotated[float, typer.Option("--timeout", min=0.01, help="Seconds per embedding or search.")] = 30.0,
    header_timeout: Annotated[
        float, typer.Option("--header-timeout", min=0.01, help="Seconds for a request's headers to arrive.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option("--body-timeout", min=0.01, help="Seconds for a request's body to arrive.")
    ] = 30.0,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="Threads per model worker [default: every core].")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Model workers taking batches in turn [default: 2 on CPU, 1 on GPU]."),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="Transformer runtime: auto, torch or onnx.")] = "auto",
    compute: Annotated[str, typer.Option("--compute", help="Network arithmetic: fp32, int8, bf16 or fp16.")] = "fp32",
    layers: Annotated[
        int | None, typer.Option("--layers", min=1, help="Run the model's first L layers only (a 2D-trained model).")
    ] = None,
    reranker: Annotated[
        str | None, typer.Option("--reranker", help="Cross-encoder folder for POST /rerank and search's rerank.")
    ] = None,
    no_access_log: Annotated[bool, typer.Option("--no-access-log", help="No log line per request.")] = False,
) -> None:
    """Serve embeddings (OpenAI-compatible), collections, search and a search page over HTTP."""
    from nestvec.serve import BatchPolicy, Limits, ServeConfig, create_app

    def job() -> Any:
        check_auth(host, keys, no_auth)
        config = ServeConfig(
            model=model,
            collections=tuple(collections or ()),
            data_dir=data_dir.resolve() if data_dir else None,
            keys=keys,
            limits=Limits(
                int(max_body_mb * 1024 * 1024),
                max_texts,
                max_chars,
                timeout_s=timeout,
                header_timeout_s=header_timeout,
                body_timeout_s=body_timeout,
            ),
            batching=BatchPolicy(
                enabled=not no_batching, max_tokens=max_batch_tokens, max_wait_ms=max_wait_ms, workers=workers
            ),
            cors_origins=tuple(cors_origin or ()),
            threads=threads,
            backend=backend,
            compute=compute,
            layers=layers,
            reranker=reranker,
        )
        return create_app(config)

    from nestvec.cli.serve_run import bind, bound_port, run

    sock = run_job(False, lambda: bind(host, port))  # a taken port fails now, before the model loads
    app = run_job(False, job)
    auth = f"keys from {keys}" if keys else "authentication off"
    typer.echo(f"nestvec serve: http://{host}:{bound_port(sock)}/ ({auth}); API docs at /docs", err=True)
    run(app, sock, header_timeout=header_timeout, access_log=not no_access_log)


def check_auth(host: str, keys: Path | None, no_auth: bool) -> None:
    """Keys are optional on loopback only; elsewhere --no-auth must say so on purpose."""
    if keys is not None and no_auth:
        raise InputError("--keys and --no-auth contradict each other; pass one.")
    if keys is None and not no_auth and not _loopback(host):
        raise InputError(
            f"--host {host} is reachable from other machines, so requests need API keys. Create one with "
            "`nestvec keys create keys.json --scope read` and pass --keys keys.json, or pass --no-auth "
            "if this network is trusted."
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@keys_app.command("create")
def create_key(
    path: KeysFile,
    scope: Annotated[str, typer.Option("--scope", help="read (embed, search) or write (also change data).")] = "read",
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    from nestvec.serve.auth import KeyStore

    record, secret = run_job(as_json, lambda: KeyStore.open(path, create=True).create(scope=scope, name=name))
    emit(as_json, {"id": record.id, "scope": record.scope, "key": secret}, secret)


@keys_app.command("list")
def list_keys(path: KeysFile, as_json: JsonOpt = False) -> None:
    """List keys (ids, names, scopes; never the keys themselves)."""
    from nestvec.serve.auth import KeyStore

    records = run_job(as_json, lambda: KeyStore.open(path).records)
    rows = [{"id": r.id, "name": r.name, "scope": r.scope, "created": r.created} for r in records]
    emit(as_json, {"keys": rows}, "\n".join(f"{r['id']}  {r['scope']:5}  {r['created']}  {r['name']}" for r in rows))


@keys_app.command("revoke")
def revoke_key(
    path: KeysFile,
    key_id: Annotated[str, typer.Argument(help="The key's id (from keys list).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key; a running server refuses it from its next request."""
    from nestvec.serve.auth import KeyStore

    def job() -> bool:
        if not KeyStore.open(path).revoke(key_id):
            raise InputError(f"No key with id '{key_id}' in {path}.")
        return True

    run_job(as_json, job)
    emit(as_json, {"revoked": key_id}, f"revoked {key_id}")
