"""Retention and erasure: records past IVR_RETENTION are deleted, and `ivr forget` erases
one customer's records, on SQLite (its bytes too) and PostgreSQL alike; the rollups,
which name nobody, keep counting them."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import retention
from ivr.errors import ConfigError
from ivr.keys import Keys
from ivr.notify.attempts import Attempt
from ivr.store import RecordStore, open_records
from ivr.store.campaigns import open_campaigns
from ivr.store.records import record_of
from tests.unit.store.test_records import KEYS, counted, ended, records, records_url

__all__ = ["records", "records_url"]  # the fixtures of test_records, on both stores

OTHER = "+15557000111"


async def test_purge_deletes_what_is_older_and_keeps_the_counts(
    records: RecordStore, records_url: str
) -> None:
    old = record_of(ended("CA1", ended_at=1_000.0, started_at=990.0), KEYS)
    new = record_of(ended("CA2", ended_at=time.time()), KEYS)
    await records.add([old, new])
    assert await records.purge(time.time() - 86400) == 1
    assert [r.call_sid for r in await records.all()] == ["CA2"]
    assert counted(records_url) == 2  # the report still counts both calls
    assert await records.purge(time.time() - 86400) == 0


async def test_forget_erases_one_customer(records: RecordStore, records_url: str) -> None:
    theirs = [record_of(ended(f"CA{n}", ended_at=1700000000.0 + n), KEYS) for n in range(3)]
    other = ended("CA9", vars={"caller": OTHER})
    await records.add([*theirs, record_of(other, KEYS)])
    customer = theirs[0].customer
    assert customer is not None
    assert await records.forget(customer) == 3
    assert [r.call_sid for r in await records.all()] == ["CA9"]
    assert counted(records_url) == 4


async def test_nothing_of_a_forgotten_customer_is_left_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = open_records(f"sqlite://{path}")
    record = record_of(ended("CA1"), KEYS)
    assert record.customer and record.caller and record.transcript
    await store.add([record, record_of(ended("CA2", vars={"caller": OTHER}), KEYS)])
    assert await store.forget(record.customer) == 1
    written = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    await store.close()
    written += b"".join(f.read_bytes() for f in tmp_path.iterdir())
    for value in (record.customer, record.caller, record.transcript, "CA1"):
        assert value.encode() not in written, value


def test_ivr_forget_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    keys = Keys.load(tmp_path / "data")  # the server's, made into its data directory
    url = f"sqlite://{tmp_path / 'calls.db'}"

    customer = keys.customer_id("+15550123")
    assert customer

    async def fill() -> None:
        store = open_records(url)
        await store.add([record_of(ended(f"CA{n}"), keys) for n in range(2)])
        await store.close()
        campaigns = open_campaigns(url)  # a campaign called them, and they said STOP
        await campaigns.save(Attempt("cmp", 2, 1, "completed", customer, "CA0", at=1.0))
        await campaigns.opt_out(customer, "sms", 2.0)
        await campaigns.close()

    async def left() -> tuple[int, bool]:
        campaigns = open_campaigns(url)
        try:
            return len(await campaigns.attempts("cmp")), await campaigns.opted_out(customer)
        finally:
            await campaigns.close()

    asyncio.run(fill())
    for name in [k for k in os.environ if k.startswith("IVR_")]:
        monkeypatch.delenv(name)
    argv = ["forget", "--number", "+15550123", "--records", url, "--data", str(tmp_path / "data")]
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        "deleted 2 call records and 1 campaign attempts of +15550123\n"
    )
    assert asyncio.run(left()) == (0, True)  # the opt-out stays: it names nobody
    assert main(argv) == 0  # nothing more
    assert capsys.readouterr().out == (
        "deleted 0 call records and 0 campaign attempts of +15550123\n"
    )
    withheld = ["forget", "--number", "anonymous", "--records", url]
    assert main([*withheld, "--data", str(tmp_path / "data")]) == 2
    assert "withheld" in capsys.readouterr().err
    assert main([*withheld[:3], "--records", url, "--data", str(tmp_path / "none")]) == 2
    assert "no keys" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("400d", 400 * 86400.0), ("36h", 36 * 3600.0), ("90m", 5400.0), ("600", 600.0)],
)
def test_retention_takes_days_hours_minutes_or_seconds(text: str, seconds: float) -> None:
    assert retention(text) == seconds


@pytest.mark.parametrize("text", ["", "0"])
def test_no_retention_keeps_records_for_ever(text: str) -> None:
    assert retention(text) is None


@pytest.mark.parametrize("text", ["-1d", "d", "soon", "1w"])
def test_a_retention_that_is_no_duration_is_an_error(text: str) -> None:
    with pytest.raises(ConfigError, match="IVR_RETENTION"):
        retention(text)


def test_records_of_the_server_are_purged_at_start(tmp_path: Path) -> None:
    """`ivr serve` with IVR_RETENTION deletes older records when it starts."""
    import asyncio
    import subprocess
    import sys

    from tests.conftest import free_port

    url = f"sqlite://{tmp_path / 'data' / 'calls.db'}"

    async def fill() -> None:
        store = open_records(url)
        old = dataclasses.replace(record_of(ended("CA1"), KEYS), ended_at=1000.0)
        await store.add([old, record_of(ended("CA2", ended_at=time.time()), KEYS)])
        await store.close()

    async def left() -> list[str]:
        store = open_records(url)
        try:
            return [r.call_sid for r in await store.all()]
        finally:
            await store.close()

    asyncio.run(fill())
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env |= {"IVR_RETENTION": "30d", "IVR_LOG_LEVEL": "INFO", "TWILIO_AUTH_TOKEN": "t"}
    command = [sys.executable, "-m", "ivr", "serve", "--port", str(free_port())]
    command += ["--admin", f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "data")]
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as server:
        try:
            assert server.stderr is not None
            for line in server.stderr:  # its log, until the purge is told
                if "deleted 1 call records older than IVR_RETENTION" in line:
                    break
            else:
                raise AssertionError("the server stopped without purging")
        finally:
            server.terminate()
    assert asyncio.run(left()) == ["CA2"]


def test_the_tools_read_the_records_of_the_data_directory_they_are_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--data DIR` means DIR's keys and DIR's calls.db, whatever IVR_DATA says."""
    import asyncio

    data = tmp_path / "server"
    keys = Keys.load(data)

    async def fill() -> None:
        store = open_records(f"sqlite://{data / 'calls.db'}")
        await store.add([record_of(ended("CA7"), keys)])
        await store.close()

    asyncio.run(fill())
    monkeypatch.setenv("IVR_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("IVR_RECORDS", raising=False)
    assert main(["calls", "list", "--data", str(data)]) == 0
    assert "CA7" in capsys.readouterr().out
    assert main(["report", "--json", "--data", str(data)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["records"], report["calls"]) == (str(data.resolve() / "calls.db"), 1)
