"""The admin listener: /metrics only there, its bearer token, and what it shows of flows
loaded and refused; on the real app, and on `ivr serve` as a process."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from ivr.config import Config
from ivr.errors import ConfigError
from ivr.server import FLOWS
from ivr.web.guard import COOKIE, Guard, session_value
from ivr.web.login import local_path
from ivr.web.pages import urls
from tests.conftest import free_port
from tests.functional.conftest import Backend, MakeServer, Server, edit_file, metric
from tests.functional.processes import Ivr, server_env

TOKEN = "admin-secret"


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as reply:
            return reply.status, reply.headers.get("WWW-Authenticate", ""), await reply.text()


async def test_metrics_are_on_the_admin_listener_not_the_public_one(server: Server) -> None:
    status, _, _ = await get(server.url + "/metrics")
    assert status == 404  # Twilio's side of the server tells nothing of its calls
    status, _, text = await get(server.admin_url + "/metrics")
    assert status == 200
    assert "ivr_calls_ended_total" in text and "process_cpu_seconds_total" in text
    public, admin = await get(server.url + "/healthz"), await get(server.admin_url + "/healthz")
    assert public[0] == admin[0] == 200
    assert json.loads(public[2]) == json.loads(admin[2])


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Basic {TOKEN}", 401),
        (TOKEN, 401),
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),  # the scheme is case-insensitive
    ],
)
async def test_a_token_guards_every_admin_route(
    make_server: MakeServer, authorization: str | None, status: int
) -> None:
    server = await make_server(admin_token=TOKEN)
    headers = {"Authorization": authorization} if authorization else None
    for path in ("/metrics", "/healthz"):
        got, challenge, _ = await get(server.admin_url + path, headers)
        assert got == status, path
        assert challenge == ("" if status == 200 else 'Bearer realm="ivr admin"')
    assert (await get(server.url + "/healthz"))[0] == 200  # load balancers need no token


async def test_a_refused_edit_counts_and_the_old_version_stays_in_the_info(
    server: Server, flows_dir: Path
) -> None:
    old = server.app[FLOWS].current["order_status"].version
    assert server.edit_flow("order_status.yaml", "next: ask_order", "next: nowhere") == []
    text = await server.metrics()
    assert metric(text, "ivr_flow_reload_failures_total") == 1
    assert metric(text, "ivr_flow_info", flow="order_status", version=old) == 1

    edit_file(flows_dir / "order_status.yaml", "next: nowhere", "next: ask_order\n# edited")
    assert server.app[FLOWS].reload() == ["order_status"]
    new = server.app[FLOWS].current["order_status"].version
    text = await server.metrics()
    assert metric(text, "ivr_flow_info", flow="order_status") == 1  # one version: the new
    assert metric(text, "ivr_flow_info", flow="order_status", version=new) == 1
    # the new version's series start at 0, like the first's
    labels = {"flow": "order_status", "version": new, "outcome": "contained"}
    samples = [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ivr_calls_ended_total" and labels.items() <= sample.labels.items()
    ]
    assert [sample.value for sample in samples] == [0.0]


async def test_ivr_serve_serves_metrics_on_its_admin_listener_only(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("admin")
    env = server_env(backend) | {"IVR_ADMIN_TOKEN": TOKEN}
    await server.start(flows_dir, server.url, env)
    try:
        assert (await get(server.url + "/metrics"))[0] == 404
        assert (await get(server.admin_url + "/metrics"))[0] == 401
        status, _, text = await get(
            server.admin_url + "/metrics", {"Authorization": f"Bearer {TOKEN}"}
        )
        assert status == 200
        assert metric(text, "ivr_flow_info", flow="telebanking") == 1
    finally:
        assert await server.kill(signal.SIGTERM) == 0
    assert "admin listener (/metrics, /healthz) on 127.0.0.1:" in server.logs
    assert f"in a browser: {server.admin_url}/phone  {server.admin_url}/flows" in server.logs
    assert "the pages ask for IVR_ADMIN_TOKEN once, at /login" in server.logs


# -- the pages' guard: the token as a cookie, Host and Origin ---------------------------------


async def fetch(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, **more: Any
) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.request(
            method, url, headers=headers, allow_redirects=False, **more
        ) as reply:
            return reply.status, dict(reply.headers), await reply.text()


async def test_beyond_loopback_the_pages_refuse_a_missing_or_wrong_token_and_take_the_cookie(
    make_server: MakeServer,
) -> None:
    port = free_port()
    server = await make_server(admin=("0.0.0.0", port), admin_token=TOKEN)
    base = f"http://127.0.0.1:{port}"
    for path in ("/flows", "/dashboard", "/dashboard/data", "/flows/live", "/", "/metrics"):
        assert (await fetch(base + path))[0] == 401, path
        assert (await fetch(base + path, headers={"Cookie": f"{COOKIE}=wrong"}))[0] == 401
        assert (await fetch(base + path, headers={"Cookie": f"{COOKIE}={TOKEN}"}))[0] == 401
    # a browser landing on a page is sent to the login form, to come back after
    status, headers, _ = await fetch(base + "/dashboard?x=1", headers={"Accept": "text/html"})
    where = urlsplit(headers["Location"])
    assert (status, where.path, parse_qs(where.query)) == (
        303,
        "/login",
        {"next": ["/dashboard?x=1"]},
    )
    status, _, text = await fetch(base + headers["Location"])
    assert status == 200 and 'name="token"' in text and 'value="/dashboard?x=1"' in text
    assert (await fetch(base + "/static/ivr.css"))[0] == 200  # the form's stylesheet

    same = {"Origin": base}
    status, _, text = await fetch(
        base + "/login", "POST", same, data={"token": "wrong", "next": "/flows"}
    )
    assert status == 401 and "not the admin token" in text
    status, headers, _ = await fetch(
        base + "/login", "POST", same, data={"token": TOKEN, "next": "/dashboard"}
    )
    assert (status, headers["Location"]) == (303, "/dashboard")
    cookie = SimpleCookie(headers["Set-Cookie"])[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert cookie.value == session_value(TOKEN) and TOKEN not in headers["Set-Cookie"]
    signed_in = {"Cookie": f"{COOKIE}={cookie.value}"}
    for path in ("/flows", "/dashboard", "/dashboard/data", "/", "/metrics", "/healthz"):
        assert (await fetch(base + path, headers=signed_in))[0] == 200, path
    # ?token= does the same; `next` never leaves this listener
    status, headers, _ = await fetch(base + f"/login?token={TOKEN}&next=//evil.example/")
    assert (status, headers["Location"]) == (303, "/flows")
    assert SimpleCookie(headers["Set-Cookie"])[COOKIE].value == cookie.value
    # Prometheus keeps its bearer header
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert (await fetch(base + "/metrics", headers=bearer))[0] == 200
    assert server.config.admin[0] == "0.0.0.0"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 421),  # a name rebound to 127.0.0.1
        ("evil.example:{port}", 421),
        ("127.0.0.1.evil.example", 421),
        ("10.1.2.3:{port}", 421),  # an address this listener does not answer on
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST.", 200),
        ("[::1]:{port}", 200),
        ("ivr.example.org:{port}", 200),  # IVR_ADMIN_HOSTS
    ],
)
async def test_a_foreign_host_is_refused(
    make_server: MakeServer, host: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(admin_hosts=("ivr.example.org",))
    port = server.config.admin[1]
    for path in ("/flows", "/dashboard/data", "/metrics", "/static/flows.js"):
        got, _, _ = await fetch(server.admin_url + path, headers={"Host": host.format(port=port)})
        assert got == status, path
    if status == 421:
        assert "refused GET /flows for Host" in caplog.text


async def test_bearer_clients_may_use_any_host_name(make_server: MakeServer) -> None:
    server = await make_server(admin_token=TOKEN)
    headers = {"Host": "ivr-1.scrape.internal:9100", "Authorization": f"Bearer {TOKEN}"}
    assert (await fetch(server.admin_url + "/metrics", headers=headers))[0] == 200
    headers["Authorization"] = "Bearer wrong"
    assert (await fetch(server.admin_url + "/metrics", headers=headers))[0] == 421


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
async def test_a_cross_site_websocket_or_post_is_refused(
    make_server: MakeServer, origin: str
) -> None:
    server = await make_server(admin_token=TOKEN)
    signed_in = {"Cookie": f"{COOKIE}={session_value(TOKEN)}"}
    async with aiohttp.ClientSession(headers=signed_in) as http:
        for path in ("/flows/live", "/phone/ws", "/anything"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.admin_url + path, origin=origin)
            assert refused.value.status == 403, path
    status, _, _ = await fetch(
        server.admin_url + "/login", "POST", {"Origin": origin}, data={"token": TOKEN}
    )
    assert status == 403  # no login CSRF either
    async with aiohttp.ClientSession(headers=signed_in) as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(
                server.admin_url + "/flows/live",
                origin="http://evil.example",
                headers={"Host": "evil.example"},
            )
        assert refused.value.status == 421  # a rebound name: refused before its Origin


async def test_a_same_origin_websocket_passes_the_guard(unused_tcp_port: int) -> None:
    """The guard on an app of its own (the admin app's WebSocket is /phone's): the same
    origin with the cookie is let through, another origin is not, and no cookie is 401."""
    guard = Guard.of("127.0.0.1", TOKEN)
    app = web.Application(middlewares=[guard.middleware()])

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data)
        return ws

    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    base = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        signed_in = {"Cookie": f"{COOKIE}={session_value(TOKEN)}"}
        async with aiohttp.ClientSession(headers=signed_in) as http:
            async with http.ws_connect(base + "/ws", origin=base) as ws:
                await ws.send_str("hello")
                assert await ws.receive_str() == "hello"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(base + "/ws", origin="http://localhost.evil.example")
            assert refused.value.status == 403
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(base + "/ws", origin=base)
            assert refused.value.status == 401
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:8081", True),  # not a browser
        ("http://127.0.0.1:8081", "127.0.0.1:8081", True),
        ("HTTP://LOCALHOST:8081", "localhost:8081", True),
        ("https://ivr.example.org", "ivr.example.org:443", True),
        ("http://127.0.0.1:8082", "127.0.0.1:8081", False),
        ("http://localhost:8081", "127.0.0.1:8081", False),
        ("null", "127.0.0.1:8081", False),
        ("file://", "127.0.0.1:8081", False),
        ("http://127.0.0.1:8081", None, False),
    ],
)
def test_same_origin(origin: str | None, host: str | None, allowed: bool) -> None:
    assert Guard.origin_allowed(origin, host) is allowed


@pytest.mark.parametrize(
    ("bound", "host", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1:8081", True),
        ("127.0.0.1", "127.9.9.9", True),
        ("127.0.0.1", "192.168.1.5:8081", False),
        ("192.168.1.5", "192.168.1.5:8081", True),
        ("0.0.0.0", "192.168.1.5:8081", True),  # an address cannot be rebound
        ("0.0.0.0", "admin.lan:8081", False),  # a name can: IVR_ADMIN_HOSTS lists the good
        ("", "[fe80::1]:8081", True),
        ("::1", "[::1]:8081", True),
        ("::1", "evil.example", False),
    ],
)
def test_host_rules(bound: str, host: str, allowed: bool) -> None:
    assert Guard.of(bound, None).host_allowed(host) is allowed


def test_login_never_sends_a_browser_away() -> None:
    for wanted in ("//evil.example", "/\\evil.example", "https://evil.example", "", None):
        assert local_path(wanted) == "/flows"
    assert local_path("/dashboard?x=1") == "/dashboard?x=1"


@pytest.mark.parametrize(
    ("text", "hosts"),
    [("", ()), ("ivr.example.org", ("ivr.example.org",)), (" A.lan. , b.lan", ("a.lan", "b.lan"))],
)
def test_admin_hosts_setting(text: str, hosts: tuple[str, ...]) -> None:
    assert Config.from_env({"IVR_ADMIN_HOSTS": text}).admin_hosts == hosts


@pytest.mark.parametrize("text", ["ivr.example.org:8081", "http://ivr.example.org", "a b"])
def test_admin_hosts_are_names_without_ports(text: str) -> None:
    with pytest.raises(ConfigError, match="IVR_ADMIN_HOSTS: expected host names without a port"):
        Config.from_env({"IVR_ADMIN_HOSTS": text})


@pytest.mark.parametrize(
    ("admin", "base"),
    [
        (("127.0.0.1", 8081), "http://127.0.0.1:8081"),
        (("0.0.0.0", 9100), "http://127.0.0.1:9100"),
        (("::1", 8081), "http://[::1]:8081"),
    ],
)
def test_the_pages_urls_that_ivr_serve_logs(admin: tuple[str, int], base: str) -> None:
    assert urls(Config(admin=admin)) == [f"{base}/phone", f"{base}/flows", f"{base}/dashboard"]
