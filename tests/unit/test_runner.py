"""The turn runner against a real backend on loopback: retries, the turn budget, hold
prompts, the cap on backend calls, times on every event, and the one way a call fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.backend import Backend
from ivr.engine import actions as act
from ivr.engine import new_session
from ivr.engine.events import CallStarted, Digits, FetchResult
from ivr.engine.session import Session
from ivr.flow import parse_and_compile
from ivr.flow.model import Flow, Text
from ivr.runner import Runner, Turn

MONDAY_10 = datetime(2030, 1, 7, 10, tzinfo=ZoneInfo("Europe/London")).timestamp()


class Api:
    """A backend whose answers a test sets: per path, a list of (status, delay) to hand out
    in turn (the last one repeats); it counts what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, float]]] = {}
        self.seen: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(f"{request.method} {request.path}")
        queue = self.answers.get(request.path, [(200, 0.0)])
        status, delay = queue.pop(0) if len(queue) > 1 else queue[0]
        await asyncio.sleep(delay)
        return web.json_response({"balance": 12, "path": request.path}, status=status)


@pytest.fixture
async def api() -> AsyncIterator[tuple[Api, str]]:
    backend = Api()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", backend.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield backend, f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
async def runner(api: tuple[Api, str]) -> AsyncIterator[Runner]:
    backend = Backend(["127.0.0.1:*"])
    yield Runner(backend, clock=lambda: MONDAY_10)
    await backend.close()


def flow_of(base: str, lookup: str, defaults: str = "") -> Flow:
    """welcome -> ask a PIN -> lookup (an http node the test writes) -> the hours check ->
    agent or voicemail; `on_error` says sorry and goes to the hours check too."""
    text = f"""
flow: t
start: welcome
defaults: {{apology: "Désolé, une erreur. Au revoir.", {defaults}}}
hours:
  support: {{tz: Europe/London, mon-fri: "09:00-18:00"}}
nodes:
  welcome: {{say: "Hello.", next: ask}}
  ask:
    ask: {{prompt: "Your PIN?", digits: {{min: 4, max: 4}}, save_as: pin, sensitive: true}}
    next: lookup
  lookup:
{lookup}
    next: told
    on_error: sorry
  told: {{say: "Balance {{{{ acct.balance }}}}.", next: hours}}
  sorry: {{say: "Our systems are slow.", next: hours}}
  hours:
    branch:
      - {{if: "open('support')", goto: agent}}
      - {{else: voicemail}}
  agent: {{transfer: {{to: "+15550199"}}}}
  voicemail: {{record: {{prompt: "Leave a message.", save_as: message}}}}
"""
    return parse_and_compile(text.replace("BASE", base), "t.yaml", {})


async def started(runner: Runner, flow: Flow) -> Session:
    turn = await runner.run(flow, new_session(flow, "c1"), CallStarted(at=MONDAY_10))
    assert turn.session.waiting == "listen"
    return turn.session


async def pin(runner: Runner, flow: Flow, budget: float | None = None) -> Turn:
    session = await started(runner, flow)
    return await runner.run(flow, session, Digits("1234", at=MONDAY_10), budget)


def said(turn: Turn) -> list[str]:
    return [a.text for a in turn.actions if isinstance(a, act.Prompt)]


async def test_the_step_after_a_backend_call_runs_at_the_runner_s_time(runner, api):
    _, base = api
    flow = flow_of(base, '    http: {url: "BASE/accounts/1", save_as: acct, timeout: 2}')
    turn = await pin(runner, flow)
    # Monday 10:00 in London: open, so the agent, not the voicemail of a 1970 clock
    assert said(turn) == ["Balance 12."]
    assert isinstance(turn.actions[-1], act.Transfer)
    assert turn.session.outcome == "transferred"
    assert turn.session.ended_at == MONDAY_10
    assert [r.at for r in turn.fetched] == [MONDAY_10]


@pytest.mark.parametrize(
    ("method", "retries", "answers", "sent", "ok"),
    [
        ("GET", "", [(503, 0), (200, 0)], 2, True),  # a GET is tried once more by default
        ("GET", "", [(429, 0), (429, 0), (200, 0)], 2, False),
        ("GET", "retries: 2,", [(429, 0), (500, 0), (200, 0)], 3, True),
        ("GET", "", [(404, 0), (200, 0)], 1, False),  # an answer is not a failure to retry
        ("GET", "retries: 0,", [(503, 0), (200, 0)], 1, False),
        ("POST", "", [(503, 0), (200, 0)], 1, False),  # a POST may have done its work
        ("POST", "retries: 1,", [(503, 0), (200, 0)], 2, True),
        ("GET", "", [(200, 1.0), (200, 0)], 2, True),  # a timeout is retried
    ],
)
async def test_retries(runner, api, method, retries, answers, sent, ok):
    backend, base = api
    backend.answers["/x"] = answers
    http = f'    http: {{method: {method}, url: "BASE/x", {retries} timeout: 0.5, save_as: acct}}'
    turn = await pin(runner, flow_of(base, http))
    assert backend.seen == [f"{method} /x"] * sent
    assert turn.fetched[-1].ok is ok
    assert said(turn)[0] == ("Balance 12." if ok else "Our systems are slow.")


async def test_a_host_not_allowed_is_not_tried_again(api):
    _, base = api
    runner = Runner(Backend(["example.org"]), clock=lambda: MONDAY_10)
    turn = await pin(runner, flow_of(base, '    http: {url: "BASE/x", retries: 3, save_as: a}'))
    assert [r.error for r in turn.fetched] == [
        f"host {base.removeprefix('http://')} is not in IVR_HTTP_ALLOW"
    ]


async def test_backend_calls_share_the_turn_budget(runner, api):
    """Three chained calls of 0.6 s in a 1.5 s budget: the third has no time left."""
    backend, base = api
    for path in ("/a", "/b", "/c"):
        backend.answers[path] = [(200, 0.6)]
    chain = """    http: {url: "BASE/a", retries: 0, timeout: 2}
    next: b
    on_error: sorry
  b:
    http: {url: "BASE/b", retries: 0, timeout: 2}
    next: c
    on_error: sorry
  c:
    http: {url: "BASE/c", retries: 0, timeout: 2, save_as: acct}"""
    turn = await pin(runner, flow_of(base, chain), budget=1.5 + 0.5)  # 0.5: the margin
    assert [r.ok for r in turn.fetched] == [True, True, False]
    assert (turn.fetched[-1].error or "").startswith("timed out")
    assert said(turn) == ["Our systems are slow."]
    assert turn.in_flight is None


async def test_a_slow_backend_with_a_hold_prompt_outlives_the_turn(runner, api):
    backend, base = api
    backend.answers["/slow"] = [(200, 1.0)]
    http = '    http: {url: "BASE/slow", save_as: acct, hold: "One moment."}'
    flow = flow_of(base, http, "hold_after: 0.1")
    turn = await pin(runner, flow, budget=5)
    assert turn.actions[-2:] == [act.Prompt((Text("One moment."),)), act.Hold()]
    assert turn.session.waiting == "fetch" and turn.fetched == []
    assert turn.in_flight is not None
    result = await turn.in_flight.task
    assert result.status == 200  # it went on after the turn's answer
    assert backend.seen == ["GET /slow"]


async def test_without_a_budget_the_hold_prompt_is_said_and_the_answer_awaited(runner, api):
    backend, base = api
    backend.answers["/slow"] = [(200, 0.5)]
    http = '    http: {url: "BASE/slow", save_as: acct, hold: "One moment."}'
    flow = flow_of(base, http, "hold_after: 0.1")
    turn = await pin(runner, flow)
    assert said(turn) == ["One moment.", "Balance 12."]
    assert turn.in_flight is None


async def test_on_hold_hears_the_hold_prompt_while_the_answer_is_awaited(runner, api):
    """A stream plays the hold prompt at once: `on_hold` is told before the answer is in."""
    backend, base = api
    backend.answers["/slow"] = [(200, 0.5)]
    http = '    http: {url: "BASE/slow", save_as: acct, hold: "One moment."}'
    flow = flow_of(base, http, "hold_after: 0.1")
    session = await started(runner, flow)
    told: list[tuple[list[str], bool]] = []

    async def on_hold(actions: list[act.Action]) -> None:
        prompts = [a.text for a in actions if isinstance(a, act.Prompt)]
        told.append((prompts, backend.seen == ["GET /slow"]))

    turn = await runner.run(flow, session, Digits("1234", at=MONDAY_10), on_hold=on_hold)
    assert told == [(["One moment."], True)]
    assert said(turn) == ["One moment.", "Balance 12."]


async def test_a_fast_backend_is_not_held(runner, api):
    _, base = api
    http = '    http: {url: "BASE/fast", save_as: acct, hold: "One moment."}'
    turn = await pin(runner, flow_of(base, http), budget=5)
    assert said(turn) == ["Balance 12."]


async def test_too_many_backend_calls_in_one_turn_fail_the_call(api):
    _, base = api
    runner = Runner(Backend(["127.0.0.1:*"]), clock=lambda: MONDAY_10, max_fetches=2)
    chain = """    http: {url: "BASE/a", timeout: 2}
    next: b
  b:
    http: {url: "BASE/b", timeout: 2}
    next: c
  c:
    http: {url: "BASE/c", timeout: 2, save_as: acct}"""
    turn = await pin(runner, flow_of(base, chain))
    assert turn.session.outcome == "failed"
    assert turn.session.error == "more than 2 backend calls in one turn"
    assert said(turn) == ["Désolé, une erreur. Au revoir."]  # the flow's own apology
    assert "pin" not in turn.session.vars  # sensitive: dropped at the end
    await runner.backend.close()


async def test_fail_is_the_one_way_a_call_fails(runner, api):
    _, base = api
    flow = flow_of(base, '    http: {url: "BASE/x", save_as: acct}')
    fresh = await started(runner, flow)
    fresh.vars["pin"] = "1234"
    failed = runner.fail(flow, fresh, "the store broke")
    assert failed.session.outcome == "failed"
    assert failed.session.error == "the store broke"
    assert failed.session.ended_at == MONDAY_10
    assert "pin" not in failed.session.vars
    assert failed.actions == [
        act.Prompt((Text("Désolé, une erreur. Au revoir."),)),
        act.Hangup("failed"),
    ]
    apology = act.Prompt((Text("Not in service."),))
    assert runner.fail(None, fresh, "no flow", apology).actions[0] == apology


@pytest.mark.parametrize("budget", [None, 5.0], ids=["no budget", "a hold that outlives it"])
async def test_the_observer_is_told_of_every_attempt(api, budget):
    """What the server's metrics hear: each attempt, its flow, node, answer and time."""
    backend, base = api
    backend.answers["/x"] = [(503, 0.0), (200, 0.2)]
    seen: list[tuple[str, str, int, float]] = []

    def observe(flow: str, fetch: act.Fetch, result: FetchResult, seconds: float) -> None:
        seen.append((flow, fetch.node, result.status, seconds))

    runner = Runner(Backend(["127.0.0.1:*"]), clock=lambda: MONDAY_10, observe=observe)
    http = '    http: {url: "BASE/x", save_as: acct, hold: "One moment."}'
    turn = await pin(runner, flow_of(base, http, "hold_after: 0.1"), budget)
    if turn.in_flight is not None:
        await turn.in_flight.task
    await runner.backend.close()
    assert [(flow, node, status) for flow, node, status, _ in seen] == [
        ("t", "lookup", 503),
        ("t", "lookup", 200),
    ]
    assert 0.2 <= seen[1][3] < 1.0
