"""The bank backend the telebanking flow's `http` nodes call during the webhook benchmark.

Run as `python bench/_bank.py --port N`: GET /accounts/{account} answers a
balance, a card and three transactions; POST /cards/block answers ok; GET /orders/{order}
answers a shipped order (the shop's, for order_status in bench/messaging.py); POST
/callbacks books the callback a voicemail out of hours asks for.
"""

from __future__ import annotations

import argparse
import json

from aiohttp import web

ACCOUNT = json.dumps(
    {
        "balance": 1234.56,
        "card_last4": "4321",
        "transactions": [
            {"amount": -42.5, "merchant": "Green Grocer"},
            {"amount": -9.99, "merchant": "Streaming Co"},
            {"amount": 2500.0, "merchant": "Payroll"},
        ],
    }
)
BLOCKED = json.dumps({"ok": True})
BOOKED = json.dumps({"booked": True})
ORDER = json.dumps({"status": "shipped", "carrier": "UPS", "eta": "Friday, November 27"})


async def account(request: web.Request) -> web.Response:
    return web.Response(text=ACCOUNT, content_type="application/json")


async def block(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text=BLOCKED, content_type="application/json")


async def callback(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text=BOOKED, status=201, content_type="application/json")


async def order(request: web.Request) -> web.Response:
    return web.Response(text=ORDER, content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/accounts/{account}", account)
    app.router.add_post("/cards/block", block)
    app.router.add_get("/orders/{order}", order)
    app.router.add_post("/callbacks", callback)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
