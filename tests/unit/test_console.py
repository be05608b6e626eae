"""`ivr call`, the console caller: typed lines drive a real call through the runner."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.backend import Backend
from ivr.cli import main
from ivr.console import call, parse_line
from ivr.engine.events import Digits, HangUp, NoInput, Speech
from ivr.flow import parse_and_compile
from ivr.runner import Runner

FLOW = """
flow: pin
start: ask
nodes:
  ask:
    ask: {prompt: "Your PIN?", digits: {min: 4, max: 4}, save_as: pin, sensitive: true}
    next: check
  check:
    http: {method: POST, url: "BASE/check", json: {pin: "{{ pin }}"}, save_as: result}
    next: menu
  menu:
    menu:
      prompt: "{{ result.name }}, press 1 to hear it again or 2 to leave."
      options:
        again: {dtmf: "1", goto: menu}
        leave: {dtmf: "2", goto: bye}
  bye: {end: {say: "Bye."}}
"""


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async def check(request: web.Request) -> web.Response:
        return web.json_response({"name": "Ada"})

    app = web.Application()
    app.router.add_post("/check", check)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


async def run(base: str, lines: str) -> tuple[str, str]:
    flow = parse_and_compile(FLOW.replace("BASE", base), "pin.yaml", {})
    backend = Backend(["127.0.0.1:*"])
    out = io.StringIO()
    try:
        outcome = await call(flow, Runner(backend), io.StringIO(lines), out)
    finally:
        await backend.close()
    return outcome, out.getvalue()


async def test_a_piped_sensitive_answer_is_masked_in_the_transcript(base: str) -> None:
    outcome, shown = await run(base, "4321\n2\n")
    assert outcome == "contained"
    assert "4321" not in shown
    assert "you> ****" in shown
    assert "you> 2" in shown  # other answers are shown as typed
    assert "[POST (masked: sensitive) -> 200]" in shown
    assert "ivr> Ada, press 1 to hear it again or 2 to leave." in shown


async def test_end_of_input_hangs_up(base: str) -> None:
    outcome, shown = await run(base, "4321\n")
    assert outcome == "abandoned"
    assert shown.rstrip().endswith("== outcome: abandoned (tasks resolved: none)")


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ("", NoInput(at=5.0)),
        ("/hangup", HangUp(at=5.0)),
        ("12 34#", Digits("1234#", at=5.0)),
        ("balance please", Speech("balance please", 1.0, at=5.0)),
        ("/say 0.4 block card", Speech("block card", 0.4, at=5.0)),
    ],
)
def test_what_a_typed_line_means(line: str, event: object) -> None:
    assert parse_line(line, 5.0) == event


HOURS_FLOW = """
flow: shop
start: check
hours:
  support: {tz: Asia/Almaty, mon-fri: "09:00-18:00", calendar: holidays}
nodes:
  check:
    branch:
      - {if: "open('support')", goto: open_now}
      - {if: "closed_message('support')", goto: told}
      - {else: closed}
  open_now: {end: {say: "We are open."}}
  told: {end: {say: "{{ closed_message('support') }}"}}
  closed: {end: {say: "We are closed."}}
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "holidays.yaml").write_text(
        'days: [{date: "12-25", name: Christmas Day}]\n'
    )
    path = tmp_path / "shop.yaml"
    path.write_text(HOURS_FLOW)
    return path


@pytest.mark.parametrize(
    ("flags", "heard"),
    [
        (["--clock", "2026-12-24 10:00"], "We are open."),  # a Thursday, in Almaty
        (["--clock", "2026-12-24 04:30"], "We are closed."),
        (["--clock", "2026-12-24T04:30+00:00"], "We are open."),  # 09:30 in Almaty
        (["--clock", "2030-12-25 10:00"], "We are closed."),  # the calendar's, every year
        (
            ["--clock", "2026-12-24 10:00", "--closed", "support=Closed for a drill."],
            "Closed for a drill.",
        ),
        (["--clock", "2026-12-24 10:00", "--closed", "support"], "We are closed."),
    ],
)
def test_call_at_a_given_time_with_hours_closed(
    shop: Path,
    flags: list[str],
    heard: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["call", str(shop), *flags]) == 0
    assert f"ivr> {heard}\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--clock", "Christmas"], "ivr: --clock 'Christmas': write a date and time such as"),
        (
            ["--closed", "sales=x"],
            "ivr: --closed sales: the flow has no hours of that name (support)",
        ),
    ],
)
def test_call_with_a_bad_clock_or_closure(
    shop: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["call", str(shop), *flags]) == 2
    assert capsys.readouterr().err.startswith(message)


async def test_prompts_in_another_language_of_the_flow_say_which() -> None:
    from pathlib import Path

    from ivr.flow import load_flow

    flow = load_flow(Path(__file__).parents[2] / "flows" / "bank_ru_kk.yaml")
    backend = Backend([])
    out = io.StringIO()
    try:
        await call(flow, Runner(backend), io.StringIO("2\nбір\n"), out)
    finally:
        await backend.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "ivr> Для русского языка нажмите 1. Қазақ тілі үшін 2 басыңыз."
    assert "ivr> [kk-KZ] Мысал Банкке қош келдіңіз." in lines
    assert "ivr> [kk-KZ] Кешіріңіз, мен түсінбедім." in lines  # бір is no menu phrase


TEXTING = """
flow: texting
start: send
nodes:
  send:
    message: {text: "Your code is 4321", channel: whatsapp}
    resolves: code_sent
    next: bye
  bye: {end: {say: "Sent."}}
"""


def test_a_message_is_shown_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "texting.yaml").write_text(TEXTING)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["call", str(tmp_path / "texting.yaml"), "--caller", "+15557654321"]) == 0
    out = capsys.readouterr().out
    assert "  [whatsapp to **********21: Your code is 4321] (shown, not sent)\n" in out
    assert "tasks resolved: code_sent" in out
