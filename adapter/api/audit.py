"""The request log middleware: every request, refused or not, becomes one row of `api_requests`.

It is also the last line of defence for errors nobody handled: the caller gets a bare 500 OperationOutcome and
the log gets the exception's type and the route, never its message or a stack trace (either may quote PHI).
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.api.responses import outcome, outcome_response
from adapter.services import Services
from adapter.store.requests import RequestRecord

log = logging.getLogger(__name__)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "(no route)"


class RequestAuditMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled %s on %s %s", type(exc).__name__, scope["method"], _route_template(scope))
            if started:
                raise
            status = 500
            await outcome_response(outcome(500, "internal error: the request could not be completed", "exception"))(
                scope, receive, send
            )
        finally:
            await run_in_threadpool(self._record, scope, status)

    def _record(self, scope: Scope, status: int) -> None:
        notes: dict[str, Any] = scope.get("state", {}).get("audit") or {}
        entry = RequestRecord(
            at=self.services.clock().astimezone(UTC).isoformat(),
            method=scope["method"],
            route=_route_template(scope)[:200],
            path=str(scope.get("path", ""))[:500],
            status=status,
            token_id=notes.get("token_id"),
            role=notes.get("role"),
            partner_id=notes.get("partner_id"),
            purpose=notes.get("purpose"),
            refusal=notes.get("refusal"),
        )
        try:
            self.services.requests.record(entry)
        except Exception as exc:  # the answer is already sent; say so without detail
            log.error("request log not written: %s", type(exc).__name__)
