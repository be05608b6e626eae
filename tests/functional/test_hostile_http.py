"""Hostile HTTP against a real `ivr serve` process: requests aiohttp cannot parse are
answered 400 and logged in one line each, never a traceback, and calls go on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tests.functional.conftest import BANK, CALLER, Backend
from tests.functional.processes import Ivr, server_env, twilio

MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",  # no colon
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS on the plain port
    b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a line too long
    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 20_000 + b"\r\n\r\n",  # a header too long
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
]


async def raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(200), 10)
    finally:
        writer.close()


async def test_malformed_requests_are_400s_in_one_log_line(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("one")
    await server.start(flows_dir, server.url, server_env(backend))
    sim = twilio(server.url, server.url)
    try:
        call = await sim.start(BANK, CALLER)  # a call in progress meanwhile
        for request in MALFORMED:
            answer = await raw(server.port, request)
            assert answer.startswith(b"HTTP/1.") and b" 400 " in answer[:20], (request, answer)
        assert len(await call.press("1")) == 1  # it goes on
    finally:
        await sim.session.close()
    assert await server.kill() != 0
    logs = server.logs
    assert "Traceback" not in logs and "BadHttpMessage" not in logs
    # each in one line; aiohttp tells TLS on a plain port at debug level only
    assert logs.count("refused a malformed request from 127.0.0.1") == len(MALFORMED) - 1
