"""Hostile HTTP against a real `ivr serve` process: requests aiohttp cannot parse are
answered 400 and logged in one line each, never a traceback, and calls go on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp

from ivr.connections import DEADLINE, LIMIT
from tests.functional.conftest import BANK, CALLER, Backend, metric
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


async def test_slow_clients_are_cut_off_and_capped(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    """Connections that drip half a request hold descriptors Twilio needs: past LIMIT
    waiting at once, each new one closes the longest waiting; each has DEADLINE seconds
    to send a complete request; and a call goes on meanwhile, on new connections too."""
    server = processes("one")
    await server.start(flows_dir, server.url, server_env(backend))
    sim = twilio(server.url, server.url)
    call = await sim.start(BANK, CALLER)
    slow = []
    try:
        for _ in range(LIMIT + 50):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /twilio/voice HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never ends
            slow.append((reader, writer))
        await asyncio.sleep(0.5)

        async def closed(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(1), 0.05) == b""
            except TimeoutError:
                return False
            except ConnectionError:
                return True

        cut = await asyncio.gather(*(closed(r) for r, _ in slow))
        assert cut[:50] == [True] * 50  # over the cap: the longest waiting closed
        assert sum(cut) < len(slow)  # the others wait out their deadline
        # the call goes on meanwhile: each of its webhooks on a new connection
        assert len(await call.press("1")) == 1
        waiting = [r for (r, _), gone in zip(slow[51:], cut[51:], strict=True) if not gone]
        ends = await asyncio.gather(
            *(asyncio.wait_for(r.read(), DEADLINE + 10) for r in waiting), return_exceptions=True
        )
        assert all(end == b"" or isinstance(end, ConnectionError) for end in ends)
        async with aiohttp.ClientSession() as http:
            async with http.get(server.admin_url + "/metrics") as response:
                text = await response.text()
        assert metric(text, "ivr_webhook_rejected_total", reason="connections") == 51
        assert metric(text, "ivr_webhook_rejected_total", reason="slow_client") == len(waiting)
    finally:
        for _, writer in slow:
            writer.close()
        await sim.session.close()
    assert "512 connections wait to send a request (slow clients?)" in server.logs


async def test_a_number_calling_too_often_is_refused_politely(make_server) -> None:
    """Past IVR_CALLER_LIMIT new calls a minute from one number, a new call hears a short
    apology in its flow's language and is hung up on, as a failed call; others go on."""
    server = await make_server(caller_limit=2)
    async with server.twilio() as sim:
        for _ in range(2):
            assert (await sim.start(BANK, CALLER)).waiting == "gather"
        refused = await sim.start(BANK, CALLER)
        assert refused.end == "hangup"
        assert refused.heard[-1].startswith("Sorry, we cannot take another call from this number")
        assert (await sim.start(BANK, "+15550009999")).waiting == "gather"
        record = await server.record(refused.sid)
        assert (record.outcome, record.error) == ("failed", "busy")
        rejected = metric(
            await server.metrics(), "ivr_webhook_rejected_total", reason="caller_rate"
        )
        assert rejected == 1
