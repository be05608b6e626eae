"""Ops close hours while servers run: `ivr hours close` (the records store) or the admin
API closes telebanking's support hours, a new call hears the closed message instead of an
agent, and `ivr hours open` (or the API) brings the agents back. Over the Twilio webhooks."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from ivr.cli import main
from ivr.flow.hours import Closure
from ivr.server import CLOSURES
from tests.conftest import free_port
from tests.functional.conftest import BANK, CALLER, OPEN, MakeServer, Server
from tests.functional.twilio_sim import wait_until

MESSAGE = "Our agents are at a training today and back tomorrow at nine."
AGENT = "Connecting you to an agent."


async def press_zero(server: Server) -> list[str]:
    """A new call to the bank that asks for an agent: what it hears then."""
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        return await call.press("0")


async def sees(server: Server, wanted: list[Closure] | None) -> bool:
    """Whether the server's copy of the ops state holds `wanted`'s hours (None: nothing)."""
    held = [(c.hours, c.message) for c in server.app[CLOSURES]()]
    return held == ([(c.hours, c.message) for c in wanted] if wanted else [])


async def ivr(*args: str) -> tuple[int, str, str]:
    """`ivr ARGS` as ops type it, off the loop (it runs its own)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(list(args))

    status = await asyncio.to_thread(run)
    return status, out.getvalue(), err.getvalue()


async def test_ivr_hours_close_and_open_while_the_server_runs(make_server: MakeServer) -> None:
    server = await make_server()
    server.set_hours(OPEN)
    assert (await press_zero(server))[0] == AGENT
    where = ["--records", server.config.records_url, "--flows", str(server.config.flows)]

    status, out, _ = await ivr("hours", "close", "support", "--say", MESSAGE, *where)
    assert (status, out) == (
        0,
        f'closed: support in every flow, closed until reopened: "{MESSAGE}"\n',
    )
    await wait_until(lambda: sees(server, [Closure("support", message=MESSAGE)]))
    heard = await press_zero(server)
    assert heard[0] == MESSAGE and AGENT not in heard
    assert (await ivr("hours", "list", *where))[1] == (
        f'support in every flow, closed until reopened: "{MESSAGE}"\n'
    )

    assert (await ivr("hours", "open", "support", *where))[:2] == (0, "reopened: support\n")
    await wait_until(lambda: sees(server, None))
    assert (await press_zero(server))[0] == AGENT


async def test_ivr_hours_close_names_what_is_wrong(make_server: MakeServer) -> None:
    server = await make_server()
    where = ["--records", server.config.records_url, "--flows", str(server.config.flows)]
    status, _, err = await ivr("hours", "close", "suport", *where)
    assert (status, err) == (2, "ivr: no hours named 'suport' in the flows (hours: support)\n")
    status, _, err = await ivr("hours", "close", "support", "--until", "6pm", *where)
    assert status == 2 and "--until '6pm': write HH:MM (in the hours' time zone" in err
    status, _, err = await ivr("hours", "open", "support", *where)
    assert (status, err) == (1, "ivr hours: support was not closed by ops\n")
    down = ["--records", f"postgresql://ivr@127.0.0.1:{free_port()}/ivr"]
    status, _, err = await ivr("hours", "open", "support", *down)
    assert status == 2 and err.startswith("ivr: the records store does not answer: ")
    assert "Traceback" not in err


async def api(server: Server, method: str, path: str, body: object = None) -> tuple[int, object]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.admin_url + path, json=body) as response:
            return response.status, await response.json()


@pytest.mark.parametrize("sessions", ["memory://"])
async def test_the_admin_api_closes_hours_for_every_process_sharing_the_records(
    make_server: MakeServer, postgres_url: str, sessions: str
) -> None:
    a = await make_server(records=postgres_url, sessions=sessions)
    b = await make_server(records=postgres_url, sessions=sessions)
    a.set_hours(OPEN)
    b.set_hours(OPEN)

    status, body = await api(
        a, "POST", "/hours/support/close", {"say": MESSAGE, "until": "23:59", "flow": "telebanking"}
    )
    assert status == 200 and isinstance(body, dict), body
    assert body["closed"]["say"] == MESSAGE and body["closed"]["until"] is not None
    assert await sees(a, [Closure("support", message=MESSAGE)])  # the process asked: at once
    await wait_until(lambda: sees(b, [Closure("support", message=MESSAGE)]))
    assert (await press_zero(b))[0] == MESSAGE
    status, listing = await api(b, "GET", "/hours")
    assert status == 200 and isinstance(listing, dict)
    assert [c["hours"] for c in listing["closures"]] == ["support"]
    assert listing["hours"]["telebanking"]["support"] == {"tz": "UTC", "open": False}

    assert await api(b, "POST", "/hours/support/open") == (200, {"reopened": 1})
    await wait_until(lambda: sees(a, None))
    assert (await press_zero(a))[0] == AGENT


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/hours/suport/close", {}, 404, "no hours named 'suport' in the flows"),
        ("/hours/support/close", {"flow": "nope"}, 404, "no flow 'nope'"),
        ("/hours/support/close", {"until": "6pm"}, 400, "until '6pm': write HH:MM"),
        ("/hours/support/close", {"say": 5}, 400, "'say' must be text"),
        ("/hours/support/close", ["say"], 400, "the body must be a JSON object"),
        ("/hours/support/open", {}, 404, "'support' was not closed by ops"),
    ],
)
async def test_the_admin_api_says_what_is_wrong(
    server: Server, path: str, body: object, status: int, error: str
) -> None:
    got, answer = await api(server, "POST", path, body)
    assert got == status and isinstance(answer, dict)
    assert error in answer["error"]


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ("{", 400, "the body must be JSON"),
        ("x" * 5000, 413, "at most 4096 bytes"),
    ],
)
async def test_the_admin_api_refuses_a_body_it_cannot_read(
    server: Server, data: str, status: int, error: str
) -> None:
    async with aiohttp.ClientSession() as http:
        url = server.admin_url + "/hours/support/close"
        async with http.post(url, data=data) as response:
            assert response.status == status
            assert error in (await response.json())["error"]
    assert server.app[CLOSURES]() == ()  # nothing was closed
