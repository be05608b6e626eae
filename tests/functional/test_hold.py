"""A turn always answers in time: the turn budget, hold prompts while a slow backend works,
the redirect that picks its answer up on any process, and a reply too late for Twilio."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.server import FLOWS
from ivr.telephony import webhook
from tests.functional.conftest import (
    BANK,
    CALLER,
    OPEN,
    SLOW,
    SLOW_BLOCK,
    Backend,
    MakeServer,
    Server,
    edit_file,
    set_hours,
)
from tests.functional.processes import Ivr, server_env, twilio
from tests.functional.twilio_sim import Call, TwilioSim

ACCOUNT = "Please enter your eight digit account number, then press the pound key."
HOLD = "One moment while I look that up."
DOWN = "Sorry, our systems are not answering right now."
AGENT = "Connecting you to an agent."
BLOCKED = "Your card has been blocked. A new card will arrive in five working days."
LOOKUP = "timeout: 2, save_as: acct}"
BLOCK = 'json: {account: "{{ account }}"}, timeout: 2}'
SLOW_ACCOUNT = "55555551"  # its balance is $80.00


def with_holds(flows: Path) -> None:
    """Telebanking's backend calls hold after 0.5 s; the card block is never tried twice."""
    path = flows / "telebanking.yaml"
    edit_file(path, "  barge_in: true\n", "  barge_in: true\n  hold_after: 0.5\n")
    edit_file(path, LOOKUP, f'{LOOKUP[:-1]}, hold: "{HOLD}"}}')
    edit_file(path, BLOCK, f'{BLOCK[:-1]}, retries: 0, hold: "{HOLD}"}}')


def held(call: Call) -> list[str]:
    """The URLs of the hold webhooks the call was sent to."""
    return [url for url, _ in call.documents if "/twilio/hold?" in url]


async def block_card(call: Call) -> None:
    """From the main menu to the question whether to block the card."""
    await call.press("2")
    await call.press(SLOW_ACCOUNT + "#")
    assert call.last[0].startswith("To block the card ending in 9876")


async def test_a_slow_backend_puts_the_caller_on_hold_until_its_answer(
    make_server: MakeServer, flows_dir: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_holds(flows_dir)
    monkeypatch.setitem(SLOW, SLOW_ACCOUNT, 1.5)
    server = await make_server()
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        assert await call.press("1") == [ACCOUNT]
        heard = await call.press(SLOW_ACCOUNT + "#")
        assert heard[:2] == [HOLD, "Your balance is $80.00."]
        first = call.documents[-len(held(call)) - 1][1]  # the turn's own answer
        assert "<Redirect" in first and HOLD in first
        assert held(call), "the answer came on a hold webhook"
        assert backend.seen == [f"GET /accounts/{SLOW_ACCOUNT}"]  # asked once
        await call.press("2")
    record = await server.record(call.sid)
    assert (record.outcome, record.tasks) == ("contained", ("balance_inquiry",))


async def test_a_fast_backend_is_never_held(sim: TwilioSim, server: Server) -> None:
    with_holds(server.config.flows)
    server.edit_flow("telebanking.yaml", "hold_after: 0.5", "hold_after: 2")  # and reload
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    assert (await call.press("12345674#"))[0] == "Your balance is $1,234.50."
    assert held(call) == []


async def test_chained_attempts_stay_within_the_turn_budget(
    make_server: MakeServer, flows_dir: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3 s lookup with a 1.4 s timeout in a 3 s budget (2.5 s of it for backends): the
    first attempt times out, the retry gets what is left, and the caller hears the flow's
    error path within the budget."""
    edit_file(flows_dir / "telebanking.yaml", LOOKUP, LOOKUP.replace("timeout: 2", "timeout: 1.4"))
    monkeypatch.setitem(SLOW, SLOW_ACCOUNT, 3.0)
    server = await make_server(turn_budget=3.0)
    server.set_hours(OPEN)
    async with server.twilio() as sim:
        call = await sim.start(BANK, CALLER)
        await call.press("1")
        assert (await call.press(SLOW_ACCOUNT + "#"))[:2] == [DOWN, AGENT]
    assert backend.seen == [f"GET /accounts/{SLOW_ACCOUNT}"] * 2  # the GET's default retry


async def test_a_timeout_that_cannot_fit_the_budget_is_refused_at_load(
    make_server: MakeServer, flows_dir: Path
) -> None:
    edit_file(flows_dir / "telebanking.yaml", LOOKUP, LOOKUP.replace("timeout: 2", "timeout: 30"))
    server = await make_server()
    assert "telebanking" not in server.app[FLOWS].current


async def test_a_reply_later_than_twilio_waits_fails_the_call(
    sim: TwilioSim, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slow account's lookup takes 0.3 s: longer than a Twilio that waits 0.2 s. Its
    caller heard Twilio's error, so the call is failed, never contained."""
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    monkeypatch.setattr(webhook, "TWILIO_WAIT", 0.2)
    await call.press(SLOW_ACCOUNT + "#")
    assert call.ended
    record = await server.record(call.sid)
    assert record.outcome == "failed"
    assert "answered after Twilio's 0.2 s" in (record.error or "")


async def test_the_step_after_a_backend_call_runs_at_its_time(
    sim: TwilioSim, server: Server
) -> None:
    """Support is open all the time but on 1 January 1970: a backend error then the hours
    check send the caller to an agent, not to a 1970 voicemail."""
    server.set_hours('support: {tz: UTC, mon-sun: "00:00-24:00", closed_on: ["1970-01-01"]}')
    call = await sim.start(BANK, CALLER)
    await call.press("1")
    assert (await call.press("44444446#"))[:2] == [DOWN, AGENT]  # the bank answers 500
    await call.press("5")  # the survey after the agent
    record = await server.record(call.sid)
    assert record.outcome == "transferred"
    assert record.ended_at > 1_000_000_000 and record.duration < 60


async def test_the_redirect_picks_the_answer_up_on_another_process(
    make_server: MakeServer,
    flows_dir: Path,
    backend: Backend,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_holds(flows_dir)
    monkeypatch.setitem(SLOW_BLOCK, SLOW_ACCOUNT, 1.5)
    public = "https://ivr.example.test"
    a = await make_server(sessions=redis_url, public_url=public)
    b = await make_server(sessions=redis_url, public_url=public)
    async with a.twilio() as sim:
        call = sim.new_call(BANK, CALLER)
        call.base_url = a.url
        await call.start()
        await block_card(call)
        request = call.gather_request(keys="1")
        reply = await call.send(request)  # process a makes the POST, and holds
        assert HOLD in reply.text
        call.base_url = b.url  # every redirect reaches process b
        heard = await call.follow(request, reply)
    assert heard[:2] == [
        HOLD,
        "Your card has been blocked. A new card will arrive in five working days.",
    ]
    assert held(call)
    assert backend.seen.count(f"POST /cards/block {SLOW_ACCOUNT}") == 1


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_a_call_on_hold_whose_server_died_is_never_sent_again(
    processes: Callable[[str], Ivr],
    flows_dir: Path,
    backend: Backend,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    store: str,
) -> None:
    """The process making the card block POST dies while its caller is on hold. On SQLite
    the restarted process finds no pending call; on Redis another process finds its maker
    silent. Either way the call goes on as a timed-out backend call: the POST is not sent
    again, since it may have worked."""
    with_holds(flows_dir)
    set_hours(flows_dir, OPEN)
    monkeypatch.setitem(SLOW_BLOCK, SLOW_ACCOUNT, 8.0)
    sessions = request.getfixturevalue("redis_url") if store == "redis" else None
    env = server_env(backend, sessions)
    public = "https://ivr.example.test"
    a = processes("a")
    other = processes("b") if store == "redis" else a
    await a.start(flows_dir, public, env)
    sim = twilio(a.url, public)
    try:
        call = sim.new_call(BANK, CALLER)
        call.base_url = a.url
        await call.start()
        await block_card(call)
        request_ = call.gather_request(keys="1")
        reply = await call.send(request_)
        assert HOLD in reply.text
        assert await a.kill(signal.SIGKILL) == -signal.SIGKILL
        await other.start(flows_dir, public, env)
        call.base_url = other.url
        heard = await call.follow(request_, reply)
    finally:
        await sim.session.close()
    assert heard[:3] == [HOLD, DOWN, AGENT]
    assert backend.seen.count(f"POST /cards/block {SLOW_ACCOUNT}") == 1
