"""Demo backends for the example flows: the bank and shop APIs that `ivr serve --demo` runs.

`flows/telebanking.yaml` and `flows/order_status.yaml` call
`${IVR_FLOW_BANK_API:-http://127.0.0.1:8099}` and `${IVR_FLOW_ORDERS_API:-http://127.0.0.1:8098}`.
On a first run nothing answers there, and every lookup ends at an agent. The demo
answers there, in the server's own process (so it stops with it), on loopback only.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr.sockets import listen

log = logging.getLogger("ivr.demo")
HOST = "127.0.0.1"
BANK_PORT = 8099  # the example flows' default IVR_FLOW_BANK_API
SHOP_PORT = 8098  # and IVR_FLOW_ORDERS_API

ACCOUNTS: dict[str, dict[str, Any]] = {  # eight digits, Luhn-valid: telebanking asks for that
    "12345674": {
        "balance": 1234.5,
        "card_last4": "4321",
        "transactions": [
            {"amount": -42.1, "merchant": "Green Grocer"},
            {"amount": 2500, "merchant": "Salary"},
            {"amount": -9.99, "merchant": "Music Stream"},
        ],
    },
    "22222228": {
        "balance": 310,
        "card_last4": "1111",
        "transactions": [
            {"amount": 12, "merchant": "Corner Coffee"},
            {"amount": -45.9, "merchant": "City Power"},
        ],
    },
    "55555551": {"balance": 80, "card_last4": "9876", "transactions": []},
}
ORDERS: dict[str, dict[str, Any]] = {  # six digits: order_status asks for that
    "123456": {"status": "shipped", "carrier": "UPS", "eta": "Friday, November 27"},
    "654321": {"status": "delivered", "delivered_on": "Monday, November 23"},
    "111111": {"status": "processing"},
}


def bank_app() -> web.Application:
    """`GET /accounts/{number}` (404 for an unknown one), `POST /cards/block` and
    `POST /callbacks` (a callback request, taken and forgotten)."""
    app = web.Application()
    app.router.add_get("/accounts/{number}", _account)
    app.router.add_post("/cards/block", _block)
    app.router.add_post("/callbacks", _callback)
    return app


def shop_app() -> web.Application:
    """`GET /orders/{number}` (404 for an unknown one)."""
    app = web.Application()
    app.router.add_get("/orders/{number}", _order)
    return app


async def _callback(request: web.Request) -> web.Response:
    body = await request.json()
    if not isinstance(body, dict) or not body.get("number"):
        return web.json_response({"error": "a number to call is needed"}, status=400)
    return web.json_response({"booked": True, "queue": body.get("queue", "")}, status=201)


async def _account(request: web.Request) -> web.Response:
    found = ACCOUNTS.get(request.match_info["number"])
    if found is None:
        return web.json_response({"error": "no such account"}, status=404)
    return web.json_response(found)


async def _block(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    account = body.get("account") if isinstance(body, dict) else None
    if not isinstance(account, str):
        return web.json_response({"error": 'expected JSON {"account": "12345674"}'}, status=400)
    if account not in ACCOUNTS:
        return web.json_response({"error": "no such account"}, status=404)
    return web.json_response({"blocked": True, "card_last4": ACCOUNTS[account]["card_last4"]})


async def _order(request: web.Request) -> web.Response:
    found = ORDERS.get(request.match_info["number"])
    if found is None:
        return web.json_response({"error": "no such order"}, status=404)
    return web.json_response(found)


@dataclass
class Demo:
    """The demo APIs' sockets, bound early so a port in use is a clear error before the
    server starts; `lifetime` serves them while an aiohttp app runs."""

    bank: list[socket.socket]
    shop: list[socket.socket]

    @classmethod
    def listen(
        cls, host: str = HOST, bank_port: int = BANK_PORT, shop_port: int = SHOP_PORT
    ) -> Demo:
        fix = "the example flows call it there: stop what uses it, or serve without --demo"
        bank = listen(host, bank_port, "the demo bank API", fix)
        try:
            shop = listen(host, shop_port, "the demo shop API", fix)
        except BaseException:
            for sock in bank:
                sock.close()
            raise
        return cls(bank, shop)

    @property
    def urls(self) -> tuple[str, str]:
        """The bank's and the shop's base URLs."""
        return (_url(self.bank[0]), _url(self.shop[0]))

    @property
    def hosts(self) -> tuple[str, ...]:
        """The demo's `host:port`s, for the backend client's allow-list (IVR_HTTP_ALLOW)."""
        return tuple(url.removeprefix("http://") for url in self.urls)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: the demo answers from the app's start-up to its end."""
        runners: list[web.AppRunner] = []
        try:
            for sockets, make in ((self.bank, bank_app), (self.shop, shop_app)):
                runner = web.AppRunner(make(), access_log=None)
                runners.append(runner)
                await runner.setup()
                for sock in sockets:
                    await web.SockSite(runner, sock).start()
            bank, shop = self.urls
            log.info(
                "demo bank API on %s: try accounts %s (any other is unknown); "
                "demo shop API on %s: try orders %s",
                bank,
                ", ".join(ACCOUNTS),
                shop,
                ", ".join(ORDERS),
            )
            for name in ("IVR_FLOW_BANK_API", "IVR_FLOW_ORDERS_API"):
                if os.environ.get(name):  # then the example flows call there instead
                    log.warning(
                        "%s is set: the example flows call %s, not the demo", name, os.environ[name]
                    )
            yield
        finally:
            for runner in reversed(runners):
                await runner.cleanup()


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"
