"""The admin listener: /metrics only there, its bearer token, and what it shows of flows
loaded and refused; on the real app, and on `ivr serve` as a process."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivr.server import FLOWS
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
