"""`ivr customers show`: one customer's conversations across channels, newest first, with
masked transcripts decrypted; never the number in clear; bad input a one-line error.
Both record stores (SQLite and PostgreSQL) answer it alike."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.engine.session import Session
from ivr.keys import Keys
from ivr.store import open_records
from ivr.store.records import record_of

NUMBER = "+15557654321"
ACCOUNT = "12345674"


def conversation(sid: str, caller: str, started: float, channel: str, **more: object) -> Session:
    session = Session(
        sid,
        "telebanking",
        "v1",
        node="goodbye",
        vars={"caller": caller},
        path=["welcome", "main", "ask_account", "goodbye"],
        outcome="contained",
        started_at=started,
        ended_at=started + 30,
        channel=channel,
        transcript=[[0.0, "main", "prompt"], [4.0, "ask_account", "dtmf", "match", "****"]],
    )
    session.__dict__.update(more)
    return session


@pytest.fixture(params=["sqlite", "postgresql"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """Records of two customers under the keys of a data directory: the URL and the
    directory."""
    data = tmp_path / "data"
    keys = Keys.load(data, env={})  # made into data/keys.json, as a server makes them
    url = (
        f"sqlite://{tmp_path / 'calls.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    sessions = [
        conversation("CA1", NUMBER, 1_790_000_000.0, "voice", tasks=["card_blocked"]),
        conversation(
            "SM2",
            f"whatsapp:{NUMBER}",
            1_790_000_600.0,
            "whatsapp",
            queue="cards",
            outcome="transferred",
            reason="option:agent",
        ),  # fmt: skip
        conversation("CA3", "+15550000001", 1_790_000_900.0, "voice"),  # someone else
    ]

    async def write() -> None:
        records = open_records(url)
        try:
            await records.add([record_of(s, keys) for s in sessions])
        finally:
            await records.close()

    asyncio.run(write())
    return url, data


def show(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["customers", "show", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_customers_conversations_across_channels_newest_first(
    stored: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, data = stored
    status, out, _ = show(capsys, "--number", NUMBER, "--records", url, "--data", str(data))
    assert status == 0, out
    customer = Keys.load(data, env={}).customer_id(NUMBER)
    assert out.startswith(f"customer {customer}: 2 conversation(s), newest first")
    table = out.split("\n\n")[1].splitlines()
    assert "channel" in table[0] and "queue" in table[0] and "time" in table[0]
    assert "whatsapp, inbound" in table[1] and "transferred: option" in table[1]
    assert "cards" in table[1] and "30 s" in table[1]
    assert "voice, inbound" in table[2] and "card_blocked" in table[2]
    assert "CA3" not in out  # another customer's
    assert out.count("pressed '****': matched") == 2  # masked before it was stored
    assert NUMBER.lstrip("+") not in out and ACCOUNT not in out
    # by the key, the same; and a WhatsApp address is the same customer
    assert show(capsys, "--key", str(customer), "--records", url, "--data", str(data))[1] == out
    again = show(capsys, "--number", f"whatsapp:{NUMBER}", "--records", url, "--data", str(data))
    assert again[1] == out


def test_without_keys_the_transcripts_stay_encrypted(
    stored: tuple[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url, data = stored
    customer = str(Keys.load(data, env={}).customer_id(NUMBER))
    status, out, _ = show(capsys, "--key", customer, "--records", url, "--data", str(tmp_path))
    assert status == 0 and "2 conversation(s)" in out
    assert out.count("(encrypted: no keys here") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--number", "anonymous"], "a withheld number or an empty identity names nobody"),
        (["--key", "+15557654321"], "--key '+15557654321': expected a customer id"),
        (["--number", NUMBER, "--data", "{nowhere}"], "no keys to find the customer by"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    Keys.load(data, env={})
    argv = [a.replace("{nowhere}", str(tmp_path / "none")) for a in argv]
    given = argv if "--data" in argv else [*argv, "--data", str(data)]
    status, out, err = show(capsys, *given, "--records", f"sqlite://{tmp_path / 'calls.db'}")
    assert status == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_customer_with_no_conversations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    Keys.load(data, env={})
    url = f"sqlite://{tmp_path / 'calls.db'}"
    asyncio.run(open_records(url).close())  # made, empty
    status, out, _ = show(capsys, "--number", NUMBER, "--records", url, "--data", str(data))
    assert status == 0 and out.endswith(": no conversations in the records\n")
    assert NUMBER.lstrip("+") not in out
