"""A customer's history, read from the call records when a conversation starts.

One indexed query (`calls_customer`: customer, started_at) reads a customer's latest
conversations, on every channel, and counts those since local midnight. Flows read the
result as `history.*` (`ivr.engine` puts it in the call's variables); a store that fails
or is slow gives an empty history, never a failed call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ivr.flow.model import Flow
    from ivr.keys import Keys

log = logging.getLogger("ivr.history")

RECENT = 20  # conversations read: the last task and queue are nearly always among them
TIMEOUT = 1.0  # seconds a call start waits for its history before going on without it
INDEX_SQL = "CREATE INDEX IF NOT EXISTS calls_customer ON calls (customer, started_at)"


@dataclass(frozen=True)
class History:
    """What a customer did before (made by a RecordStore's `history`, read by flows as
    `history.*`): of their latest conversation, its outcome, channel and end; the latest
    task resolved and queue reached; how many conversations they started today."""

    last_task: str | None = None
    last_outcome: str | None = None
    last_queue: str | None = None
    last_channel: str | None = None
    last_at: float | None = None  # Unix time the latest conversation ended
    calls_today: int = 0

    def as_vars(self) -> Mapping[str, Any]:
        """A frozen mapping for `CallStarted.history`."""
        return MappingProxyType(asdict(self))


EMPTY = History()


class HistoryStore(Protocol):
    async def history(self, customer: str, now: float, tz: tzinfo) -> History: ...


def midnight(now: float, tz: tzinfo) -> float:
    """The Unix time of the last local midnight at `now` in `tz`."""
    local = datetime.fromtimestamp(now, tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def history_sql(mark: str = "?") -> str:
    """The customer's RECENT latest conversations, each with the count of today's: one
    statement, both parts served by the index (args: customer, midnight, customer)."""
    today = f"SELECT count(*) FROM calls WHERE customer = {mark} AND started_at >= {mark}"
    return (
        f"SELECT ended_at, outcome, channel, tasks, queue, ({today}) FROM calls "
        f"WHERE customer = {mark} ORDER BY started_at DESC LIMIT {RECENT}"
    )


def history_of(rows: Sequence[Sequence[Any]]) -> History:
    """The history in rows of `history_sql`, newest first."""
    if not rows:
        return EMPTY
    ended_at, outcome, channel, _, _, today = rows[0]
    tasks = (json.loads(row[3] or "[]") for row in rows)
    last_task = next((done[-1] for done in tasks if done), None)
    last_queue = next((row[4] for row in rows if row[4]), None)
    return History(last_task, outcome, last_queue, channel, ended_at, int(today))


async def lookup(
    store: HistoryStore | None, customer: str | None, now: float, tz: tzinfo = UTC
) -> History:
    """The customer's history, or EMPTY: for nobody (a withheld number), without a store,
    or when the store fails or takes longer than TIMEOUT (logged: the call goes on)."""
    if store is None or customer is None:
        return EMPTY
    read = asyncio.ensure_future(store.history(customer, now, tz))
    try:
        # shielded: a slow read is left to finish, not cut off mid-query on a connection
        # the records writer shares
        return await asyncio.wait_for(asyncio.shield(read), TIMEOUT)
    except Exception as e:  # TimeoutError too
        read.add_done_callback(_unheard)
        why = type(e).__name__
        log.warning("the caller's history could not be read (%s): the call goes on without", why)
        return EMPTY


def _unheard(read: asyncio.Future[History]) -> None:
    """A read nobody waits for any more: its error was logged (or is of no interest)."""
    if not read.cancelled():
        read.exception()


def zone(flow: Flow) -> tzinfo:
    """Where a flow's day begins for `calls_today`: its (first) hours' time zone, else UTC."""
    return next((hours.tz for hours in flow.hours.values()), UTC)


async def of_caller(
    store: HistoryStore | None, keys: Keys | None, flow: Flow, address: str, now: float
) -> Mapping[str, Any]:
    """What a conversation starting now on `flow` puts in `CallStarted.history`: the history
    of the customer behind `address` (a number, `whatsapp:+...`, `chat:ID`), keyed by
    `keys`; empty for a withheld number, without a store, or when it fails. Every channel's
    adapter calls this before the first step."""
    customer = keys.customer_id(address) if keys is not None else None
    return (await lookup(store, customer, now, zone(flow))).as_vars()
