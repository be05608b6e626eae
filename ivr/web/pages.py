"""The admin app's browser routes: `/login`, `/` (an index), `/flows` and its live feed,
`/dashboard` and its data, and `/static/` (ivr/web/static/: stylesheet and modules)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ivr.config import Config
from ivr.registry import FlowRegistry
from ivr.web import flows as flows_page
from ivr.web import login
from ivr.web.dashboard import Dashboard
from ivr.web.guard import Guard
from ivr.web.layout import PAGES, STATIC, page
from ivr.web.live import LIVE, LiveNodes, stream

STATIC_DIR = Path(__file__).parent / "static"


def add(app: web.Application, flows: FlowRegistry, config: Config, guard: Guard) -> None:
    """Every page route on the admin `app` (which the guard's middleware covers)."""
    hub = app[LIVE] = LiveNodes()

    async def close_streams(_: web.Application) -> None:
        hub.close()  # before the runner waits for its handlers: live streams end now

    app.on_shutdown.append(close_streams)
    app.router.add_routes(login.handlers(guard))
    app.router.add_get("/", index)
    app.router.add_routes([flows_page.handler(flows, config.records_url), stream(hub)])
    app.router.add_routes(Dashboard(flows, config.records_url, config.flows).routes())
    app.router.add_static(STATIC, STATIC_DIR, append_version=False)


def urls(config: Config) -> list[str]:
    """The pages' URLs on the admin listener, as a person on this machine opens them."""
    host, port = config.admin
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # every address: loopback among them
    shown = f"[{host}]" if ":" in host else host
    return [f"http://{shown}:{port}{path}" for path, _ in PAGES]


async def index(request: web.Request) -> web.Response:
    """`/`: where the pages are."""
    links = "".join(f'<li><a href="{path}">{name}</a></li>' for path, name in PAGES)
    body = (
        f"<ul>{links}</ul>"
        '<p class="meta"><a href="/metrics">/metrics</a> (Prometheus) and '
        '<a href="/healthz">/healthz</a> are here too.</p>'
    )
    return web.Response(text=page("ivr admin", body, [], current="/"), content_type="text/html")
