"""telebanking's experiment over HTTP: the bank's callers split between the keypad flow
and the voice-first one, each caller keeping theirs, and every call recorded with both."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.server import HOOKS
from tests.functional.conftest import (
    BANK,
    CALLER,
    EXPERIMENT,
    MakeServer,
    Server,
    edit_file,
)
from tests.functional.twilio_sim import TwilioSim

KEYPAD = "For your balance, press 1 or say balance."
VOICE = "How can I help you?"
HEARD = {"telebanking": KEYPAD, "telebanking_voice": VOICE}
CALLERS = [f"+1555000{n:04d}" for n in range(16)]


@pytest.fixture
async def split(
    make_server: MakeServer, flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Server, TwilioSim]]:
    """The server with the repository's telebanking, experiment included, and a fixed
    customer key: which of CALLERS gets which variant is the same on every run."""
    edit_file(flows_dir / "telebanking.yaml", "start: welcome\n", EXPERIMENT + "start: welcome\n")
    monkeypatch.setenv("IVR_CUSTOMER_KEY", "a fixed customer key for the functional tests")
    monkeypatch.setenv("IVR_DATA_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    server = await make_server()
    async with server.twilio() as sim:
        yield server, sim


async def variant_heard(sim: TwilioSim, caller: str, **kwargs: str) -> tuple[str, str]:
    """Call the bank, hang up after the greeting: (the call's SID, the variant it heard)."""
    call = await sim.start(BANK, caller, **kwargs)
    (variant,) = [name for name, prompt in HEARD.items() if call.last[-1].startswith(prompt)]
    await call.hangup()
    return call.sid, variant


async def test_callers_land_on_both_variants_and_keep_theirs(split, backend) -> None:
    server, sim = split
    first = {caller: await variant_heard(sim, caller) for caller in CALLERS}
    assert {variant for _, variant in first.values()} == {"telebanking", "telebanking_voice"}
    for sid, variant in first.values():
        record = await server.record(sid)
        assert (record.experiment, record.variant, record.flow_id) == (
            "voice_vs_dtmf",
            variant,
            variant,
        )
        assert record.outcome == "abandoned"
    again = {caller: (await variant_heard(sim, caller))[1] for caller in CALLERS}
    assert again == {caller: variant for caller, (_, variant) in first.items()}


async def test_withheld_callers_are_split_by_call(split, backend) -> None:
    server, sim = split
    sids = [f"CA{n:032x}" for n in range(16)]
    heard = [(await variant_heard(sim, "anonymous", call_sid=sid))[1] for sid in sids]
    assert set(heard) == {"telebanking", "telebanking_voice"}
    records = [await server.record(sid) for sid in sids]
    assert [r.variant for r in records] == heard
    assert all(r.customer is None and r.experiment == "voice_vs_dtmf" for r in records)


async def test_the_variant_query_pins_and_the_voice_flow_serves(split, backend) -> None:
    """A caller pinned to the voice-first variant asks for the balance in their own words."""
    server, sim = split
    call = await sim.start(BANK, CALLER, voice_path="/twilio/voice?variant=telebanking_voice")
    assert call.last == ["Welcome to Example Bank.", VOICE]
    stored = await server.app[HOOKS].sessions.load(call.sid)
    assert stored is not None
    assert (stored.session.flow_id, stored.session.experiment, stored.session.variant) == (
        "telebanking_voice",
        "voice_vs_dtmf",
        "telebanking_voice",
    )
    heard = await call.say("I'd like to check my balance")
    assert heard[0].startswith("Please say your eight digit account number")
    heard = await call.say("one two three four five six seven four")
    assert heard[0] == "Your balance is $1,234.50."
    await call.say("no thanks")
    record = await server.record(call.sid)
    assert (record.outcome, record.tasks) == ("contained", ("balance_inquiry",))
    assert (record.flow_id, record.experiment, record.variant) == (
        "telebanking_voice",
        "voice_vs_dtmf",
        "telebanking_voice",
    )
    for pinned, prompt in HEARD.items():  # the other way too, for any caller
        for caller in CALLERS[:4]:
            call = await sim.start(BANK, caller, voice_path=f"/twilio/voice?variant={pinned}")
            assert call.last[-1].startswith(prompt)
            await call.hangup()


async def test_a_variant_not_in_the_split_is_ignored(split, backend, caplog) -> None:
    _, sim = split
    unpinned = [await variant_heard(sim, caller) for caller in CALLERS[:4]]
    pinned = [
        await variant_heard(sim, caller, voice_path="/twilio/voice?variant=order_status")
        for caller in CALLERS[:4]
    ]
    assert [v for _, v in pinned] == [v for _, v in unpinned]
    assert any("?variant=order_status is not a variant" in m for m in caplog.messages)


async def test_the_other_functional_tests_run_without_the_experiment(
    make_server: MakeServer, backend
) -> None:
    """The flows' copy leaves telebanking's experiment out: the bank's number is the keypad
    flow for every caller, with no experiment on its calls."""
    server = await make_server()
    async with server.twilio() as sim:
        sid, variant = await variant_heard(sim, CALLERS[0])
    record = await server.record(sid)
    assert (variant, record.flow_id, record.experiment, record.variant) == (
        "telebanking",
        "telebanking",
        "",
        "",
    )
