"""API keys: random tokens shown once, stored only as SHA-256 hashes, each with a scope.

"read" keys embed and search; "write" keys may also create collections and change documents.
Keys are 256-bit random, so a fast hash is enough (as for GitHub or Stripe tokens): there is
no password to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from nestvec.errors import InputError
from nestvec.files import FORMAT_VERSION, write_json_atomic
from nestvec.registry import unknown_name_message
from nestvec.serve.limits import send_error

SCOPES = ("read", "write")
PREFIX = "nv-"


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    scope: str
    sha256: str
    created: str

    def allows(self, scope: str) -> bool:
        return self.scope == "write" or scope == "read"


class KeyStore:
    """The keys file: {"format_version": 1, "keys": [KeyRecord, ...]}; rewritten atomically.

    `find` reads the file again whenever it changed (one stat per request), so a key created or
    revoked by `nestvec keys` takes effect on a running server at once; a file removed under the
    server leaves no key valid."""

    def __init__(self, path: Path, records: list[KeyRecord]) -> None:
        self.path, self.records = path, records
        self._stamp = _stamp(path)

    @classmethod
    def open(cls, path: str | Path, *, create: bool = False) -> KeyStore:
        path = Path(path)
        if not path.exists():
            if create:
                return cls(path, [])
            raise InputError(f"No keys file at {path}. Create one with: nestvec keys create {path} --scope read")
        return cls(path, _read(path))

    def create(self, *, scope: str, name: str = "") -> tuple[KeyRecord, str]:
        """A new key: returns its record and the secret, which is not stored anywhere."""
        if scope not in SCOPES:
            raise InputError(unknown_name_message("scope", scope, list(SCOPES)))
        secret = PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            id=secrets.token_hex(4), name=name, scope=scope, sha256=_digest(secret), created=time.strftime("%F %T")
        )
        self.records = [*self.records, record]
        self._save()
        return record, secret

    def revoke(self, key_id: str) -> bool:
        kept = [r for r in self.records if r.id != key_id]
        found = len(kept) != len(self.records)
        self.records = kept
        self._save()
        return found

    def find(self, secret: str) -> KeyRecord | None:
        self._refresh()
        digest = _digest(secret)
        for record in self.records:
            if hmac.compare_digest(record.sha256, digest):
                return record
        return None

    def _refresh(self) -> None:
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            self.records = _read(self.path) if stamp is not None else []
        except (InputError, OSError):
            return  # a file edited by hand into nonsense: the keys read last stay in force
        self._stamp = stamp

    def _save(self) -> None:
        data: dict[str, Any] = {"format_version": FORMAT_VERSION, "keys": [asdict(r) for r in self.records]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, data)
        self.path.chmod(0o600)  # hashes only, but still nobody else's business
        self._stamp = _stamp(self.path)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _read(path: Path) -> list[KeyRecord]:
    try:
        data = json.loads(path.read_text())
        return [KeyRecord(**r) for r in data["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a nestvec keys file ({exc!r}).") from exc


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


PUBLIC_PATHS = frozenset({"/", "/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
DOCS_ASSETS = "/docs-assets"  # Swagger UI's and ReDoc's files
PUBLIC_PREFIXES = (DOCS_ASSETS + "/",)


STATE_KEY = "nestvec_key"  # where Authenticate leaves the request's KeyRecord for the routes
MISSING_KEY = "Missing API key: send the header 'Authorization: Bearer <key>'."
UNKNOWN_KEY = "Unknown or revoked API key."


class Authenticate:
    """Refuses a request without a known key before anything reads its body (plain ASGI, outside
    the body limit): unauthenticated clients cost the server no buffer. The key's record goes to
    the request's state, where routes check its scope. CORS preflights (OPTIONS) carry no
    credentials by design and pass."""

    def __init__(self, app: ASGIApp, keys: KeyStore) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or path in PUBLIC_PATHS
            or path.startswith(PUBLIC_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        kind, _, secret = header.partition(" ")
        bearer = kind.lower() == "bearer" and bool(secret)
        record = self.keys.find(secret.strip()) if bearer else None
        if record is not None:
            scope.setdefault("state", {})[STATE_KEY] = record
            await self.app(scope, receive, send)
            return
        problem = UNKNOWN_KEY if bearer else MISSING_KEY
        await send_error(send, 401, problem, "authentication_error", close=True)  # its body is never read
