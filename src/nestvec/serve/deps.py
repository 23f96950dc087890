"""Dependencies shared by the routes: the server state and the scope a route needs."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nestvec.serve.auth import MISSING_KEY, STATE_KEY
from nestvec.serve.state import ServerState

_bearer = HTTPBearer(auto_error=False, description="An API key from `nestvec keys create`.")


def state(request: Request) -> ServerState:
    server: ServerState = request.app.state.nestvec
    return server


State = Annotated[ServerState, Depends(state)]


def require(scope: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """A dependency that lets the request through when its key has `scope` (or auth is off)."""

    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        # `credentials` declares the bearer scheme in the OpenAPI schema; the key itself was
        # checked by the Authenticate middleware before the body was read, which left its record.
        if state(request).keys is None:
            return
        record = getattr(request.state, STATE_KEY, None)
        if record is None:
            raise HTTPException(401, MISSING_KEY)
        if not record.allows(scope):
            raise HTTPException(403, f"This key has the '{record.scope}' scope; this request needs '{scope}'.")

    return check


Read = Depends(require("read"))
Write = Depends(require("write"))
