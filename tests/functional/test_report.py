"""`ivr report --json` after a known mix of calls through the running server, over HTTP and
signed as Twilio signs them, with records in SQLite and in PostgreSQL: exact figures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main
from ivr.report.query import connect
from ivr.stats import fisher_exact, wilson
from tests.functional.conftest import BANK, CALLER, EXPERIMENT, OPEN, MakeServer, edit_file
from tests.functional.twilio_sim import Call, TwilioSim, wait_until

# an agent option in telebanking's main menu (not a global one): a transfer by `option`
AGENT_OPTION = (
    '        transactions: {dtmf: "3"',
    '        talk: {dtmf: "9", speech: [talk to someone], goto: check_hours}\n'
    '        transactions: {dtmf: "3"',
)


async def bank(sim: TwilioSim, variant: str, script: list[Any]) -> Call:
    """A whole call to the bank, pinned to one variant of its experiment."""
    call = sim.new_call(BANK, CALLER, voice_path=f"/twilio/voice?variant={variant}")
    await call.start()
    for step in script:
        kind, _, arg = step.partition(":")
        if kind == "press":
            await call.press(arg)
        elif kind == "say":
            await call.say(arg, 0.9)
        elif kind == "silence":
            await call.silence()
        else:
            await call.hangup()
    return call


async def drive(sim: TwilioSim) -> list[Call]:
    keys, voice = "telebanking", "telebanking_voice"
    calls = [
        await bank(sim, keys, ["press:1", "press:12345674#", "press:2"]),  # self-service
        # to an agent, then the survey (CSAT) after the agent
        await bank(sim, keys, ["press:0", "press:5"]),  # zero-out: global
        await bank(sim, keys, ["press:9", "press:4"]),  # the menu's agent option
        await bank(sim, keys, ["silence", "silence", "silence", "press:2"]),  # on_fail
        await bank(sim, keys, ["press:1", "press:44444446#", "press:3"]),  # the backend fails
        await bank(sim, keys, ["hangup"]),  # hung up at the menu
        await bank(sim, keys, ["press:1", "hangup"]),  # at the account number
        await bank(sim, keys, ["press:1", "press:12345674#", "hangup"]),  # after the balance
        await bank(sim, voice, ["say:balance", "press:12345674#", "say:no"]),  # self-service
        await bank(sim, voice, ["hangup"]),
    ]
    assert [c.end for c in calls] == [
        "hangup",
        *["hangup"] * 4,
        *["caller-hung-up"] * 3,
        "hangup",
        "caller-hung-up",
    ]
    return calls


@pytest.fixture(params=["sqlite", "postgresql"])
def records(request: pytest.FixtureRequest) -> str | None:
    """Where the server writes its records: None for SQLite under its data directory."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def report(url: str, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`ivr report --json` as a person runs it, off the loop (the server shares it)."""
    status = await asyncio.to_thread(main, ["report", "--records", url, "--json", *args])
    out, err = capsys.readouterr()
    assert status == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


async def written(url: str, count: int) -> None:
    """Wait until the background writer has written `count` records."""

    async def done() -> bool:
        def read() -> int:
            with connect(url) as reader:
                return int(reader.rows("SELECT COUNT(*) FROM calls")[0][0])

        return await asyncio.to_thread(read) == count

    await wait_until(done)


async def test_the_report_of_a_known_mix(
    make_server: MakeServer,
    flows_dir: Path,
    records: str | None,
    backend: object,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    edit_file(flows_dir / "telebanking.yaml", "start: welcome\n", EXPERIMENT + "start: welcome\n")
    edit_file(flows_dir / "telebanking.yaml", *AGENT_OPTION)
    monkeypatch.setenv("IVR_FLOWS", str(flows_dir))  # the funnel in the flow's order
    server = await make_server(records=records)
    server.set_hours(OPEN)  # agents in: transfers are transfers, not voicemail
    async with server.twilio() as sim:
        await drive(sim)
    url = records or f"sqlite://{server.config.records_path}"
    await written(url, 10)

    found = await report(url, capsys=capsys)
    assert found["calls"] == 10
    assert {o: v["calls"] for o, v in found["outcomes"].items()} == {
        "contained": 2,
        "transferred": 4,
        "abandoned": 4,
        "failed": 0,
    }
    low, high = wilson(2, 10)
    assert found["containment"] == {"calls": 2, "of": 10, "rate": 0.2, "low": low, "high": high}
    csat = found["surveys"]["csat"]  # asked after each agent: 5, 4, 2 and 3
    assert (csat["answers"], csat["mean"]) == (4, 3.5)
    assert csat["counts"] == {"2": 1, "3": 1, "4": 1, "5": 1}
    assert csat["by_reason"] == {
        "global": {"answers": 1, "mean": 5.0},
        "on_error": {"answers": 1, "mean": 3.0},
        "on_fail": {"answers": 1, "mean": 2.0},
        "option": {"answers": 1, "mean": 4.0},
    }
    assert found["resolution"]["calls"] == 3  # both self-service calls and the hang-up after
    assert (found["abandoned"]["after_task"], found["abandoned"]["before_task"]) == (1, 3)
    reasons = {r: v["calls"] for r, v in found["transfers"]["by_reason"].items()}
    assert reasons == {
        "option": 1,
        "global": 1,
        "on_fail": 1,
        "on_error": 1,
        "node": 0,
        "callback": 0,
        "channel": 0,
    }
    assert {q: v["calls"] for q, v in found["transfers"]["by_queue"].items()} == {"support": 4}
    assert found["zero_outs"]["calls"] == 1
    assert {t: v["calls"] for t, v in found["tasks"].items()} == {"balance_inquiry": 3}

    funnel = {n["node"]: n for n in found["funnel"]["telebanking"]}
    assert list(funnel)[:5] == ["welcome", "returning", "main", "ask_account", "lookup"]
    assert (funnel["main"]["reached"], funnel["main"]["transferred"]) == (8, 3)
    assert funnel["main"]["abandoned"] == 1
    assert (funnel["ask_account"]["reached"], funnel["ask_account"]["abandoned"]) == (4, 1)
    assert (funnel["lookup"]["reached"], funnel["lookup"]["transferred"]) == (3, 1)
    assert funnel["anything_else"]["abandoned"] == 1
    assert found["inputs"]["no_input"]["inputs"] == 3
    speech = found["inputs"]["modes"]["speech"]
    assert (speech["match"], speech["no_match"]) == (2, 0)
    main_prompt = next(n for n in found["prompts"]["telebanking"] if n["node"] == "main")
    # 9 inputs at the menu: one each in six calls, three silences in the on_fail one
    assert (main_prompt["inputs"], main_prompt["no_input"]) == (9, 3)
    assert found["time_in_ivr"]["all"]["median_bucket"] == [0, 5]  # the sim is quick
    assert sum(day["calls"] for day in found["per_day"]) == 10

    exp = (await report(url, "--experiment", "voice_vs_dtmf", capsys=capsys))["experiment"]
    assert {
        v: (c["calls"], c["containment"]["calls"], c["resolution"]["calls"])
        for v, c in exp["variants"].items()
    } == {
        "telebanking": (8, 1, 2),
        "telebanking_voice": (2, 1, 1),
    }
    containment, resolution = exp["tests"]
    assert containment["p_value"] == pytest.approx(fisher_exact(1, 8, 1, 2))
    assert resolution["p_value"] == pytest.approx(fisher_exact(2, 8, 1, 2))
    assert containment["sentence"].startswith("Not yet")

    only = await report(url, "--flow", "telebanking_voice", capsys=capsys)
    assert (only["calls"], only["containment"]["calls"]) == (2, 1)
