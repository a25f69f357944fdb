"""Request limits: a per-token rate (token bucket) and a cap on request body size.

The rate limiter is per process and in memory: one service process per clinic is the deployment this is built
for; several processes each allow the full rate. The body cap is an ASGI middleware that counts bytes as they
arrive, so a client that lies in Content-Length (or sends none) is cut off too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.api.responses import outcome_response
from adapter.errors import PayloadTooLargeError, RateLimitError


@dataclass
class RateLimiter:
    """`per_minute` requests per minute per key, with bursts of up to `burst`."""

    per_minute: int
    burst: int
    monotonic: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, at)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> None:
        """Spend one request of `key`'s allowance, or raise RateLimitError saying when to come back."""
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.monotonic()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise RateLimitError(f"too many requests for this token: retry in {wait} s", retry_after=wait)
            self._buckets[key] = (tokens - 1.0, now)


class BodyTooLarge(HTTPException):
    """Raised from inside the app while the body is read: an HTTPException, so FastAPI's body parsing passes it
    on unchanged (it turns other exceptions into a 400) and the app's handler answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over the limit of {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413 OperationOutcome."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = PayloadTooLargeError(f"request body over the limit of {self.max_bytes} bytes")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await outcome_response(error)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await outcome_response(error)(scope, receive, send)
