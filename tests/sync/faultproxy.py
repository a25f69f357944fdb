"""A loopback HTTP/1.1 proxy that injects faults between the adapter and a FHIR peer.

Runs an asyncio server in a thread on 127.0.0.1. Each client request is read whole (headers +
Content-Length body), then the next scripted fault for that kind of request decides what happens:

* ``pass``     forward to the peer and relay its answer;
* ``500``      answer 500 without forwarding; ``429`` answer 429 with ``Retry-After: 1`` without forwarding;
* ``drop``     close the connection without an answer, without forwarding;
* ``timeout``  forward (the peer applies it), then hold the answer past the client's read timeout;
* ``reset``    forward, send half of the peer's answer, then reset the connection (RST);
* ``slow``     forward, then wait ``slow_s`` before relaying (a window to SIGKILL the worker in).

``down()``/``up()`` close and reopen the listening socket on the same port (connection refused meanwhile).
Everything is bounded: reads and upstream calls have timeouts, and ``stop()`` ends the loop and the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

IO_TIMEOUT_S = 30.0


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    port: int = 0
    hold_s: float = 3.0  # `timeout`: longer than the client's read timeout
    slow_s: float = 1.0
    writes: deque[str] = field(default_factory=deque)  # faults for POST/PUT, consumed in order; then `pass`
    applies_to: Callable[[str], bool] = lambda method: method in ("POST", "PUT")
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, fault)
    forwarded: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    def _call(self, coro: object) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(15)  # type: ignore[arg-type]

    def down(self) -> None:
        self._call(self._close())

    def up(self) -> None:
        self._call(self._listen())

    async def _shutdown(self) -> None:
        """Close the listener, then end every open connection so no socket outlives the proxy (pytest turns an
        unclosed socket into an error)."""
        await self._close()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0.05)  # let the closed transports finish closing

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # --- one connection ----------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(10_000):  # keep-alive: bounded number of requests per connection
                request = await self._read_request(reader)
                if request is None:
                    return
                method, path, raw = request
                fault = self.writes.popleft() if self.applies_to(method) and self.writes else "pass"
                self.seen.append((method, path, fault))
                if not await self._answer(fault, raw, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, fault: str, raw: bytes, writer: asyncio.StreamWriter) -> bool:
        """Act out one fault; False when the connection is finished."""
        if fault in ("500", "429"):
            extra = b"Retry-After: 1\r\n" if fault == "429" else b""
            status = b"500 Internal Server Error" if fault == "500" else b"429 Too Many Requests"
            writer.write(b"HTTP/1.1 " + status + b"\r\n" + extra + b"Content-Length: 0\r\n\r\n")
            await writer.drain()
            return True
        if fault == "drop":
            return False
        response = await self._forward(raw)
        self.forwarded += 1
        if fault == "timeout":
            await asyncio.sleep(self.hold_s)
            return False
        if fault == "reset":
            writer.write(response[: len(response) // 2])
            await writer.drain()
            sock = writer.get_extra_info("socket")
            if sock is not None:  # RST instead of FIN: a reset mid-response
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        writer.write(response)
        await writer.drain()
        return False  # the peer's answer says Connection: close; the client opens a new connection

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT_S)
        except (asyncio.IncompleteReadError, TimeoutError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length = 0
        kept = [lines[0]]
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            if name.strip().lower() in ("connection", "keep-alive"):
                continue
            kept.append(line)
        body = await asyncio.wait_for(reader.readexactly(length), IO_TIMEOUT_S) if length else b""
        raw = ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + body
        return method, path, raw

    async def _forward(self, raw: bytes) -> bytes:
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(self.upstream_host, self.upstream_port), IO_TIMEOUT_S
        )
        try:
            up_writer.write(raw)
            await up_writer.drain()
            return await asyncio.wait_for(up_reader.read(-1), IO_TIMEOUT_S)
        finally:
            up_writer.close()
