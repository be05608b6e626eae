"""The admin listener: what ops read (`/metrics`, `/healthz`) and the browser pages
(`/flows`, `/dashboard`, `/phone`), apart from the public port Twilio reaches, behind a
token whenever it can be reached beyond loopback (a bearer header, or a session cookie for
browsers), and refusing foreign `Host`s and `Origin`s (ivr/web/guard.py).

One `ivr serve` process has one admin listener; with several processes Prometheus
scrapes each, and its rules add them up.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from ivr.config import Config
from ivr.errors import ConfigError
from ivr.metrics import CONTENT_TYPE, Metrics
from ivr.registry import FlowRegistry
from ivr.sockets import listen
from ivr.store.health import StoreHealth
from ivr.web.guard import Guard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Lifetime = Callable[[web.Application], AsyncIterator[None]]
GUARD = web.AppKey("guard", Guard)  # the admin app's rules, for routes added later


def build_admin_app(
    flows: FlowRegistry, metrics: Metrics, config: Config, stores: StoreHealth | None = None
) -> web.Application:
    """`/metrics`, `/healthz` and the browser pages (`/flows`, `/dashboard`; `/phone` joins
    them) of the server that owns `flows` and `metrics`. Every route, added here or later,
    is behind the guard (ivr/web/guard.py): Host and Origin checked and, with
    IVR_ADMIN_TOKEN, the bearer token or the session cookie `/login` sets."""
    from ivr.web import pages

    guard = Guard.of(config.admin[0], config.admin_token, config.admin_hosts)
    app = web.Application(middlewares=[guard.middleware()])
    app[GUARD] = guard

    async def exposition(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", exposition)
    app.router.add_get("/healthz", health(flows, stores))
    pages.add(app, flows, config, guard)
    return app


def health(flows: FlowRegistry, stores: StoreHealth | None = None) -> Handler:
    """`/healthz`: 200 with the versions served; 503 while no flow is loaded, or while a
    store (`stores`) is unreachable, with which and why."""

    async def healthz(request: web.Request) -> web.Response:
        current = flows.current
        down = stores.problems if stores is not None else {}
        status = "no flows" if not current else "store unreachable" if down else "ok"
        body: dict[str, object] = {
            "status": status,
            "flows": {f.id: f.version for f in current.values()},
        }
        if down:
            body["stores"] = down
        return web.json_response(body, status=200 if status == "ok" else 503)

    return healthz


def listen_admin(config: Config) -> list[socket.socket]:
    """The admin listener's sockets; ConfigError when they cannot be bound, or when they
    would be reachable beyond loopback without IVR_ADMIN_TOKEN."""
    host, port = config.admin
    sockets = listen(host, port, "the admin listener", "set IVR_ADMIN or --admin")
    beyond = exposed(sockets)
    if beyond and not config.admin_token:
        for sock in sockets:
            sock.close()
        raise ConfigError(
            f"IVR_ADMIN: the admin listener ({host or '*'}:{port}) would answer on "
            f"{', '.join(beyond)}, beyond loopback, without a token: set IVR_ADMIN_TOKEN, "
            "or listen on loopback (--admin 127.0.0.1:8081)"
        )
    return sockets


def exposed(sockets: Sequence[socket.socket]) -> list[str]:
    """The addresses of `sockets` that other hosts can reach (all but loopback)."""
    found = []
    for sock in sockets:
        address = sock.getsockname()[0]
        if not ipaddress.ip_address(address).is_loopback:
            found.append(address)
    return found


def serving(admin: web.Application, sockets: Sequence[socket.socket]) -> Lifetime:
    """A cleanup context for the public app that serves `admin` on `sockets` while the
    public app runs: up once the stores are open, down before they close."""

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(admin, access_log=None, handle_signals=False)
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        yield
        await runner.cleanup()

    return lifetime
