"""Web chat benchmark: turns a second, turn latency and server CPU per turn of `ivr serve`
answering chats on `/chat/ws`.

Starts `ivr serve --demo` (SQLite sessions and records, the demo shop API in the same
process) and drives `--chats` order status conversations over real loopback WebSockets,
`--concurrency` at a time, each as the widget would: hello (the greeting and the order
question), an order number (a backend call, the answer and the menu's choices), the
goodbye key (the end). A turn's latency is from the message sent to the last message
of its answer. Server CPU is user+sys of the server's processes, from /proc.

    .venv/bin/python bench/chat.py [--chats 400] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from _servers import PYTHON, ROOT, free_port, process_tree, usage

ASK = "Please send your six digit order number."
# each turn of a chat: what is sent, and the last message of its answer
STEPS: list[tuple[dict[str, object], Callable[[dict[str, Any]], bool]]] = [
    ({"type": "hello", "visitor": None}, lambda m: m.get("text") == ASK),
    ({"type": "message", "text": "123456"}, lambda m: m["type"] == "choices"),
    ({"type": "message", "text": "2"}, lambda m: m["type"] == "end"),
]


async def chat(http: aiohttp.ClientSession, url: str, origin: str, turns: list[float]) -> None:
    async with http.ws_connect(url, origin=origin) as ws:
        for sent, last in STEPS:
            started = time.perf_counter()
            await ws.send_json(sent)
            while True:
                message = (await ws.receive(timeout=60)).json()
                assert message["type"] != "error", message
                if last(message):
                    break
            turns.append(time.perf_counter() - started)


async def drive(url: str, origin: str, chats: int, concurrency: int) -> tuple[list[float], float]:
    turns: list[float] = []
    slots = asyncio.Semaphore(concurrency)

    async def one(http: aiohttp.ClientSession) -> None:
        async with slots:
            await chat(http, url, origin, turns)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(one(http) for _ in range(chats)))
        return turns, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"IVR_DATA": tmp, "IVR_LOG_LEVEL": "WARNING", "IVR_WS_RATE": "0"}
        argv = [PYTHON, "-m", "ivr", "serve", "--demo", "--port", str(port)]
        argv += ["--admin", f"127.0.0.1:{free_port()}", "--flows", str(ROOT / "flows")]
        log = open(Path(tmp) / "serve.log", "wb")  # closed after the process
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        sys.exit(
                            "ivr serve did not start: " + (Path(tmp) / "serve.log").read_text()
                        )
                    time.sleep(0.2)
            url = f"{base}/chat/ws?flow=order_status"
            asyncio.run(drive(url, base, 20, 10))  # warm-up
            before, _ = usage(process_tree(server.pid))
            turns, seconds = asyncio.run(drive(url, base, args.chats, args.concurrency))
            after, _ = usage(process_tree(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    ms = sorted(t * 1000 for t in turns)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"chats {args.chats}, {args.concurrency} at a time: {len(turns)} turns in {seconds:.1f} s"
    )
    print(f"  turns a second        {len(turns) / seconds:8.1f}")
    print(f"  turn latency p50, p99 {statistics.median(ms):8.1f} ms {p99:8.1f} ms")
    print(f"  server CPU a turn     {(after - before) / len(turns) * 1000:8.2f} ms")


if __name__ == "__main__":
    main()
