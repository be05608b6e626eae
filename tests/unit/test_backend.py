"""Backend calls of `http` nodes, against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.backend import MAX_BODY, Backend, allowed_hosts
from ivr.engine.actions import Fetch
from ivr.flow.templates import compile_url


async def _answer(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "json":
        return web.json_response({"got": await request.json(), "cookie": dict(request.cookies)})
    if name == "text":
        return web.Response(text="plain words")
    if name == "big":
        return web.Response(body=b"x" * (MAX_BODY + 1))
    if name == "slow":
        await asyncio.sleep(2)
    if name == "cookie":
        response = web.json_response({})
        response.set_cookie("session", "caller-one")
        return response
    return web.json_response({}, status=404)


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{name}", _answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def backend(origin: str) -> AsyncIterator[Backend]:
    backend = Backend([origin])
    yield backend
    await backend.close()


def fetch(url: str, method: str = "GET", timeout: float = 3.0, json: object = None) -> Fetch:
    return Fetch("lookup", method, url, timeout, json=json)


async def test_json_goes_both_ways(backend: Backend, origin: str) -> None:
    result = await backend.fetch(fetch(f"http://{origin}/json", method="POST", json={"a": [1]}))
    assert (result.status, result.body["got"], result.error) == (200, {"a": [1]}, None)


async def test_text_when_asked_for_and_statuses_pass_through(backend: Backend, origin: str) -> None:
    asked = dataclasses.replace(fetch(f"http://{origin}/text"), text=True)
    assert (await backend.fetch(asked)).body == "plain words"
    assert (await backend.fetch(fetch(f"http://{origin}/missing"))).status == 404


async def test_a_2xx_that_is_not_json_is_an_error(backend: Backend, origin: str) -> None:
    result = await backend.fetch(fetch(f"http://{origin}/text"))
    assert (result.ok, result.status, result.error) == (False, 200, "the answer is not JSON")


async def test_hosts_outside_the_allow_list_are_never_called(backend: Backend) -> None:
    for url in (
        "http://example.com/x",
        "http://127.0.0.1:1/x",  # same host, another port
        "file:///etc/passwd",
        "http://127.0.0.1:notaport/x",
    ):
        result = await backend.fetch(fetch(url))
        assert result.error is not None and "IVR_HTTP_ALLOW" in result.error, url


def test_allow_patterns() -> None:
    backend = Backend(allowed_hosts("*.bank.internal, api.example.com:8443"))
    assert backend.permits("https://core.bank.internal/accounts")
    assert not backend.permits("https://bank.internal.evil.com/accounts")
    assert backend.permits("https://api.example.com:8443/")
    assert not backend.permits("https://api.example.com/")  # port 443 is not 8443
    assert allowed_hosts("") == ()


async def test_timeouts_and_oversized_answers_are_errors(backend: Backend, origin: str) -> None:
    slow = await backend.fetch(fetch(f"http://{origin}/slow", timeout=0.2))
    assert slow.error == "timed out after 0.2 s"
    big = await backend.fetch(fetch(f"http://{origin}/big"))
    assert big.error == "answer larger than 1 MiB"


async def test_no_cookie_carries_over_to_the_next_call(backend: Backend, origin: str) -> None:
    await backend.fetch(fetch(f"http://{origin}/cookie"))
    result = await backend.fetch(fetch(f"http://{origin}/json", method="POST", json={}))
    assert result.body["cookie"] == {}


async def test_caller_input_in_a_url_stays_inside_its_segment() -> None:
    """Speech put into an http node's URL is percent-encoded: "../../admin/delete?all=1"
    reaches the backend as one path segment, never as /admin/delete?all=1."""
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    backend = Backend([f"127.0.0.1:{server.port}"])
    url = compile_url(f"http://127.0.0.1:{server.port}/accounts/{{{{ said }}}}?q={{{{ q }}}}")
    try:
        for said, q in [("../../admin/delete?all=1", "a&b=c#d"), ("..", "é ö"), (".", None)]:
            result = await backend.fetch(fetch(url({"said": said, "q": q})))
            assert result.status == 200, result
    finally:
        await backend.close()
        await server.close()
    assert seen == [
        "/accounts/..%2F..%2Fadmin%2Fdelete%3Fall%3D1?q=a%26b%3Dc%23d",
        "/accounts/%2E%2E?q=%C3%A9%20%C3%B6",
        "/accounts/%2E?q=",
    ]
