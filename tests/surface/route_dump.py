"""Test-only middleware: writes the running server's own route table to a file at start.

Starlette puts the application itself in every scope (`scope["app"]`, Starlette.__call__), the
lifespan's included, so a middleware sees the FastAPI app vLLM built, with every route that its
flags and env mounted. Handed to vLLM by a `--middleware` before the allow-list's, so it runs
inside it and never sees a request the allow-list refused.
"""

from __future__ import annotations

import json
import os
from typing import Any

ROUTES_FILE_ENV = "SURFACE_ROUTES_FILE"


class RouteDump:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.written = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.written and "app" in scope:
            routes = []
            for route in scope["app"].routes:
                methods = sorted(getattr(route, "methods", None) or [])
                kind = "websocket" if type(route).__name__ == "WebSocketRoute" else "mount" if not hasattr(route, "methods") and hasattr(route, "routes") else "http"
                routes.append({"path": route.path, "methods": methods, "kind": kind, "name": getattr(route, "name", "")})
            with open(os.environ[ROUTES_FILE_ENV], "w") as file:
                json.dump(routes, file, indent=1)
            self.written = True
        await self.app(scope, receive, send)
