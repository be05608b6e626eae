"""The demo backends, over HTTP on loopback, and their fit to the example flows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ivr import demo
from ivr.demo import ACCOUNTS, ORDERS, Demo
from ivr.errors import ConfigError
from ivr.flow.loader import read_flow_file
from ivr.flow.templates import luhn
from tests.conftest import free_port

FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture
async def running() -> AsyncIterator[Demo]:
    """The demo on free loopback ports, started and stopped by an app's lifetime as
    `ivr serve --demo` does."""
    started = Demo.listen(demo.HOST, free_port(), free_port())
    app = web.Application()
    app.cleanup_ctx.append(started.lifetime)
    runner = web.AppRunner(app)
    await runner.setup()  # the app's start-up: the demo answers from here
    try:
        yield started
    finally:
        await runner.cleanup()


async def answer(method: str, url: str, **kw) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http, http.request(method, url, **kw) as response:
        return response.status, await response.json()


async def test_bank_accounts(running: Demo) -> None:
    bank, _ = running.urls
    for number, account in ACCOUNTS.items():
        assert await answer("GET", f"{bank}/accounts/{number}") == (200, account)
    assert await answer("GET", f"{bank}/accounts/99999997") == (404, {"error": "no such account"})


async def test_block_a_card(running: Demo) -> None:
    bank, _ = running.urls
    blocked = await answer("POST", f"{bank}/cards/block", json={"account": "12345674"})
    assert blocked == (200, {"blocked": True, "card_last4": "4321"})
    unknown = await answer("POST", f"{bank}/cards/block", json={"account": "99999997"})
    assert unknown == (404, {"error": "no such account"})
    assert (await answer("POST", f"{bank}/cards/block", data=b"12345674"))[0] == 400


async def test_shop_orders(running: Demo) -> None:
    _, shop = running.urls
    for number, order in ORDERS.items():
        assert await answer("GET", f"{shop}/orders/{number}") == (200, order)
    assert await answer("GET", f"{shop}/orders/000000") == (404, {"error": "no such order"})


async def test_stops_with_the_app() -> None:
    started = Demo.listen(demo.HOST, free_port(), free_port())
    app = web.Application()
    app.cleanup_ctx.append(started.lifetime)
    runner = web.AppRunner(app)
    await runner.setup()
    bank, _ = started.urls
    await runner.cleanup()
    with pytest.raises(aiohttp.ClientConnectionError):
        await answer("GET", f"{bank}/accounts/12345674")


def test_the_demo_allows_its_own_hosts() -> None:
    bank_port, shop_port = free_port(), free_port()
    started = Demo.listen(demo.HOST, bank_port, shop_port)
    try:
        assert started.hosts == (f"127.0.0.1:{bank_port}", f"127.0.0.1:{shop_port}")
    finally:
        for sock in (*started.bank, *started.shop):
            sock.close()


def test_a_demo_port_in_use_is_one_clear_error() -> None:
    taken = Demo.listen(demo.HOST, free_port(), free_port())
    bank_port = taken.bank[0].getsockname()[1]
    try:
        with pytest.raises(ConfigError) as e:
            Demo.listen(demo.HOST, bank_port, free_port())
    finally:
        for sock in (*taken.bank, *taken.shop):
            sock.close()
    assert str(e.value) == (
        f"cannot listen on 127.0.0.1:{bank_port} for the demo bank API: address already in "
        "use (the example flows call it there: stop what uses it, or serve without --demo)"
    )


def test_accounts_pass_the_flows_check() -> None:
    """telebanking asks for eight digits that pass `luhn`: the demo's accounts must."""
    assert all(len(n) == 8 and luhn(n) for n in ACCOUNTS)
    assert all(len(n) == 6 for n in ORDERS)


@pytest.mark.parametrize(
    ("flow", "node", "port"),
    [("telebanking", "lookup", demo.BANK_PORT), ("order_status", "lookup", demo.SHOP_PORT)],
)
def test_the_example_flows_call_the_demo_by_default(flow: str, node: str, port: int) -> None:
    doc = read_flow_file(FLOWS / f"{flow}.yaml", env={})
    url = doc.data["nodes"][node]["http"]["url"]
    assert url.startswith(f"http://{demo.HOST}:{port}/")
