"""Nothing leaks (issue 14): full calls enter account numbers by keys and by voice (a wrong
one too, and a long number said at the menu) from two callers, end, and the server is
killed; then every byte the service wrote is searched for those values and the callers'
numbers, each also in its digit-only form:
- with the defaults (SQLite): its log at DEBUG, the data directory with its WAL files,
  the metrics, `ivr report`, `ivr calls list`;
- with sessions in Redis and records in PostgreSQL: Redis's append-only file and the
  dump of `SAVE`, taken in the middle of a call and after the calls, with every key's
  `DUMP`; every file of PostgreSQL's data directory (tables and pg_wal) after `CHECKPOINT`.
The values are 8 digits or more, so a match is never a timestamp by chance; the Redis and
PostgreSQL ones are new each run (those servers keep what other tests wrote).

Text conversations the same way: by SMS, a long account number answers a sensitive ask a
flow opts in to SMS (`channels: [voice, sms]`), and a long card number is typed at the menu
before a sensitive ask left to voice (refused: told to call); a word of the customer's is
searched for too (no log line may carry a message's body). Only the messages the customer
sent hold them: the replies must not echo them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import redis

from tests.functional.conftest import ACCOUNTS, BANK, Backend
from tests.functional.processes import IVR, Ivr, server_env, twilio
from tests.functional.test_store_down import RedisProcess
from tests.functional.twilio_sim import Call, TwilioSim, wait_until


@dataclass(frozen=True)
class Secrets:
    """What two callers tell: the numbers they call from, the account each enters (by keys,
    by voice), a wrong one (it fails the Luhn check) and a long number said at the menu."""

    callers: tuple[str, str]
    by_keys: str
    by_voice: str
    wrong: str
    said: str  # digits, said one by one

    def forms(self) -> dict[str, str]:
        """Each value in the forms a store could keep it in: as entered, digits only, spaced."""
        out = {}
        for name, value in vars(self).items():
            values = value if isinstance(value, tuple) else (value,)
            for i, v in enumerate(values):
                digits = v.lstrip("+")
                out |= {f"{name}{i}": v, f"{name}{i} digits": digits}
                out[f"{name}{i} spaced"] = " ".join(digits)
        return out


FIXED = Secrets(
    ("+15557654321", "+15559876543"), "12345674", "22222228", "98765432", "73190462855174"
)


def with_check_digit(body: str) -> str:
    """`body` and the digit that makes it pass the Luhn check."""
    return next(body + d for d in "0123456789" if _luhn(body + d))


def _luhn(digits: str) -> bool:
    doubled = (int(c) * (2 if i % 2 else 1) for i, c in enumerate(reversed(digits)))
    return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0


def fresh_secrets() -> Secrets:
    """Values no other test uses: the Redis and PostgreSQL servers outlive each test."""
    digits = random.SystemRandom()

    def number(n: int) -> str:
        return str(digits.randrange(10 ** (n - 1), 10**n))

    wrong = number(8)
    while _luhn(wrong):
        wrong = number(8)
    callers = ("+1555" + number(7), "+1555" + number(7))
    return Secrets(
        callers, with_check_digit(number(7)), with_check_digit(number(7)), wrong, number(14)
    )


async def full_calls(
    server: Ivr, values: Secrets, midway: Callable[[Call], None] = lambda call: None
) -> list[Call]:
    """Two full calls: one enters an account by keys after a wrong one and ends at goodbye,
    the other says a long number at the menu, then its account, and hangs up; `midway` runs
    while the second call holds its account, before it hangs up."""
    sim = twilio(server.url, server.url)
    try:
        keyed = await sim.start(BANK, values.callers[0])
        await keyed.press("1")
        await keyed.press(values.wrong + "#")  # no match: said again
        assert "Your balance is $1,234.50." in await keyed.press(values.by_keys + "#")
        await keyed.press("2")  # goodbye
        # telebanking's account entry is keys only (sensitive): the voice variant, opted in
        # to Twilio's recogniser (cloud_speech), takes it spoken
        voice = "/twilio/voice?flow=telebanking_voice"
        spoken = await sim.start(BANK, values.callers[1], voice_path=voice)
        assert "didn't catch that" in " ".join(await spoken.say(" ".join(values.said)))
        await spoken.say("balance")
        heard = await spoken.say(" ".join(values.by_voice))  # "2 2 2 2 2 2 2 8", as Twilio hears it
        assert "Your balance is $310.00." in heard
        midway(spoken)
        await spoken.hangup()
    finally:
        await sim.session.close()
    return [keyed, spoken]


async def metrics_of(server: Ivr) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.admin_url + "/metrics") as response:
            return await response.text()


def leaks(values: Secrets, written: dict[str, bytes]) -> list[str]:
    """Each value found, with where."""
    size = sum(len(data) for data in written.values())
    print(f"searched {len(written)} files and dumps, {size / 2**20:.1f} MB")  # shown with -s
    return [
        f"{name} ({value}) in {where}"
        for name, value in values.forms().items()
        for where, data in written.items()
        if value.encode() in data
    ]


async def test_no_account_or_caller_number_in_anything_written(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    server = processes("one")
    env = server_env(backend) | {"IVR_LOG_LEVEL": "DEBUG"}
    await server.start(flows_dir, server.url, env)
    await full_calls(server, FIXED)
    metrics = await metrics_of(server)
    assert "balance_inquiry" in metrics  # the calls went where they should
    assert await server.kill(signal.SIGKILL) == -signal.SIGKILL  # no clean stop to tidy up

    tools = os.environ | {"IVR_DATA": str(server.data)}
    report = [
        subprocess.run([str(IVR), *args], env=tools, capture_output=True, text=True, check=True)
        for args in (["report", "--json"], ["calls", "list"], ["report"])
    ]
    written = {str(path): path.read_bytes() for path in server.data.rglob("*") if path.is_file()}
    assert any(name.endswith("-wal") for name in written)  # WAL files were written, and read
    written["log"] = server.log.read_bytes()
    written["metrics"] = metrics.encode()
    written |= {f"ivr {r.args[1:]}": (r.stdout + r.stderr).encode() for r in report}
    assert leaks(FIXED, written) == []


@pytest.fixture
def redis_aof(tmp_path: Path) -> Any:
    """A redis-server of the test's own with its append-only file on, as in production."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisProcess(workdir)
    server.start()
    yield server
    server.kill()


def redis_bytes(url: str, workdir: Path, when: str) -> dict[str, bytes]:
    """What Redis keeps on disk, after `SAVE`: the dump and the append-only files; and
    every key's `DUMP`."""
    with redis.Redis.from_url(url) as client:
        assert client.save()
        out = {f"{when}: DUMP {key!r}": client.dump(key) or b"" for key in client.scan_iter()}
    files = (p for p in workdir.rglob("*") if p.is_file() and p.suffix != ".log")
    return out | {f"{when}: {p.relative_to(workdir)}": p.read_bytes() for p in files}


async def _both_recorded(url: str) -> list[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(url) as db:
        try:
            cursor = await db.execute("SELECT call_sid, outcome FROM calls ORDER BY outcome")
        except psycopg.errors.UndefinedTable:  # made with the first record
            return []
        rows = await cursor.fetchall()
    return rows if len(rows) == 2 else []


def postgres_bytes(url: str) -> dict[str, bytes]:
    """Every file of the PostgreSQL server's data directory, after a `CHECKPOINT` wrote what
    its memory held into the tables."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CHECKPOINT")
        row = db.execute("SHOW data_directory").fetchone()
    assert row is not None
    data = Path(row[0])
    return {
        str(p.relative_to(data)): p.read_bytes()
        for p in data.rglob("*")
        if p.is_file() and not p.name.startswith("postmaster")
    }


async def test_no_account_or_caller_number_in_redis_or_postgres(
    processes: Callable[[str], Ivr],
    flows_dir: Path,
    backend: Backend,
    redis_aof: RedisProcess,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = fresh_secrets()
    for new, old in ((values.by_keys, "12345674"), (values.by_voice, "22222228")):
        monkeypatch.setitem(ACCOUNTS, new, ACCOUNTS[old])  # the same balances, new numbers
    server = processes("one")
    env = server_env(backend, sessions=redis_aof.url) | {"IVR_RECORDS": postgres_url}
    await server.start(flows_dir, server.url, env)
    written: dict[str, bytes] = {}

    def midway(call: Call) -> None:  # the account is in the session, sealed
        written.update(redis_bytes(redis_aof.url, redis_aof.workdir, "mid-call"))
        assert any(call.sid.encode() in data for data in written.values())  # its session

    calls = await full_calls(server, values, midway)
    records = await wait_until(lambda: _both_recorded(postgres_url))
    assert records == [(calls[1].sid, "abandoned"), (calls[0].sid, "contained")]
    assert await server.kill(signal.SIGKILL) == -signal.SIGKILL
    written |= redis_bytes(redis_aof.url, redis_aof.workdir, "after")
    aof = b"".join(data for name, data in written.items() if "appendonly" in name)
    assert all(call.sid.encode() in aof for call in calls)  # every write of both calls
    tables = postgres_bytes(postgres_url)
    for call in calls:  # the records are in the files read, tables and WAL both
        found = {name.split("/")[0] for name, data in tables.items() if call.sid.encode() in data}
        assert {"base", "pg_wal"} <= found, found
    written |= {f"postgres: {name}": data for name, data in tables.items()}
    assert leaks(values, written) == []


# -- text conversations ----------------------------------------------------------------------

PAY = "+15550177"
TEXT_FLOW = """\
flow: pay_by_text
description: Payments by SMS; the leak test's flow (the example flows keep sensitive asks off text).
language: en-US
numbers: ["+15550177"]
start: main
nodes:
  main:
    menu:
      prompt: "Reply 1 to pay from your account, 2 to pay by card."
      options:
        account: {dtmf: "1", speech: [account], goto: ask_account}
        card: {dtmf: "2", speech: [card, pay by card], goto: ask_card}
  ask_account:
    ask:
      prompt: "Your account number, please."
      input: digits
      digits: {min: 8, max: 24}
      save_as: account
      sensitive: true
    channels: [voice, sms]
    next: check
  check:  # a host no one allows: the error logged names it, and with it the account
    http: {method: GET, url: "http://a{{ account }}.invalid/check", timeout: 1, save_as: checked}
    on_error: confirm
    next: confirm
  confirm:
    menu:
      prompt: "Reply 1 to pay now, 2 to cancel."
      options:
        pay: {dtmf: "1", speech: [pay], goto: paid}
        cancel: {dtmf: "2", speech: [cancel], goto: paid}
  ask_card:
    ask:
      prompt: "Your card number, please."
      input: digits
      digits: {min: 12, max: 24}
      save_as: card
      sensitive: true
    next: paid
  paid:
    end: {say: "Thank you. Goodbye."}
"""


@dataclass(frozen=True)
class TextSecrets:
    """What two customers text: their numbers, an account number (at the ask opted in to
    SMS), a card number (at the menu, before the ask left to voice), and a word."""

    customers: tuple[str, str]
    account: str
    card: str
    word: str

    def forms(self) -> dict[str, str]:
        digits = {
            "account": self.account,
            "card": self.card,
            **{f"customer{i}": c.lstrip("+") for i, c in enumerate(self.customers)},
        }
        out = {name: value for name, value in digits.items()}
        out |= {f"{name} spaced": " ".join(value) for name, value in digits.items()}
        return out | {"word": self.word, "customer0 +": self.customers[0]}


def fresh_text_secrets() -> TextSecrets:
    pick = random.SystemRandom()
    long_ = "".join(pick.choice("0123456789") for _ in range(19))
    return TextSecrets(
        ("+1555" + str(pick.randrange(10**6, 10**7)), "+1555" + str(pick.randrange(10**6, 10**7))),
        "9" + long_,
        "4" + long_[::-1],
        "zq" + "".join(pick.choice("bcdfghjklmnpqrstvwxz") for _ in range(14)),
    )


def text_flows(flows_dir: Path) -> Path:
    (flows_dir / "pay_by_text.yaml").write_text(TEXT_FLOW)
    return flows_dir


async def text_conversations(
    server: Ivr, values: TextSecrets, midway: Callable[[], None] = lambda: None
) -> list[str]:
    """Two SMS conversations: one gives its account where the flow asks for it by SMS and
    pays; the other types a word and its card number at the menu and is told to call.
    `midway` runs while the first holds its account. Every reply is returned."""
    sim: TwilioSim = twilio(server.url, server.url)
    replies: list[str] = []

    async def text(customer: str, body: str) -> str:
        said = "\n".join(await sim.text(PAY, customer, body))
        replies.append(said)
        return said

    try:
        first, second = values.customers
        assert "Reply 1 for account" in await text(first, "hi")
        assert "Your account number" in await text(first, "1")
        assert "Reply 1 for pay" in await text(first, f"it is {values.account} thanks")
        midway()
        assert "Goodbye." in await text(first, "1")
        await text(second, "hello")
        assert "didn't catch that" in await text(second, f"{values.word} please")
        told = await text(second, f"pay by card {values.card}")
        assert "call us" in told, told
    finally:
        await sim.session.close()
    return replies


def echoed(values: TextSecrets, replies: list[str]) -> list[str]:
    return [
        f"{name} in a reply: {reply!r}"
        for name, value in values.forms().items()
        for reply in replies
        if value in reply
    ]


def text_leaks(values: TextSecrets, written: dict[str, bytes]) -> list[str]:
    return [
        f"{name} ({value}) in {where}"
        for name, value in values.forms().items()
        for where, data in written.items()
        if value.encode() in data
    ]


async def test_no_sensitive_text_message_in_anything_written(
    processes: Callable[[str], Ivr], flows_dir: Path, backend: Backend
) -> None:
    values = fresh_text_secrets()
    server = processes("one")
    env = server_env(backend) | {"IVR_LOG_LEVEL": "DEBUG"}
    await server.start(text_flows(flows_dir), server.url, env)
    replies = await text_conversations(server, values)
    assert echoed(values, replies) == []
    metrics = await metrics_of(server)
    tools = os.environ | {"IVR_DATA": str(server.data)}

    async def both_recorded() -> bool:
        listed = subprocess.run(
            [str(IVR), "calls", "list"], env=tools, capture_output=True, text=True, check=True
        )
        return listed.stdout.count("pay_by_text") == 2

    await wait_until(both_recorded)
    assert await server.kill(signal.SIGKILL) == -signal.SIGKILL
    report = [
        subprocess.run([str(IVR), *args], env=tools, capture_output=True, text=True, check=True)
        for args in (["report", "--json"], ["calls", "list"], ["report"])
    ]
    written = {str(path): path.read_bytes() for path in server.data.rglob("*") if path.is_file()}
    log = server.log.read_bytes()
    assert b"/twilio/messaging" in log or b"text conversation" in log  # logged at DEBUG
    written["log"] = log
    written["metrics"] = metrics.encode()
    written |= {f"ivr {r.args[1:]}": (r.stdout + r.stderr).encode() for r in report}
    assert text_leaks(values, written) == []


async def test_no_sensitive_text_message_in_redis_or_postgres(
    processes: Callable[[str], Ivr],
    flows_dir: Path,
    backend: Backend,
    redis_aof: RedisProcess,
    postgres_url: str,
) -> None:
    values = fresh_text_secrets()
    server = processes("one")
    env = server_env(backend, sessions=redis_aof.url) | {"IVR_RECORDS": postgres_url}
    await server.start(text_flows(flows_dir), server.url, env)
    written: dict[str, bytes] = {}

    def midway() -> None:  # the account is in the conversation's session, sealed
        written.update(redis_bytes(redis_aof.url, redis_aof.workdir, "mid-conversation"))
        assert any(b"TX" in name.encode() for name in written)  # its session's key

    replies = await text_conversations(server, values, midway)
    assert echoed(values, replies) == []
    records = await wait_until(lambda: _both_recorded(postgres_url))
    assert sorted(outcome for _, outcome in records) == ["contained", "transferred"]
    assert await server.kill(signal.SIGKILL) == -signal.SIGKILL
    written |= redis_bytes(redis_aof.url, redis_aof.workdir, "after")
    tables = postgres_bytes(postgres_url)
    for sid, _ in records:
        found = {name.split("/")[0] for name, data in tables.items() if sid.encode() in data}
        assert {"base", "pg_wal"} <= found, found
    written |= {f"postgres: {name}": data for name, data in tables.items()}
    assert text_leaks(values, written) == []
