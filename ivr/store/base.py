"""The session store interface: a call's Session and the reply last sent for it."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidTag

from ivr.engine.events import FetchResult
from ivr.engine.session import Session
from ivr.errors import IvrError
from ivr.keys import PAIRED, Keys

log = logging.getLogger("ivr.store")

ACTIVE_TTL = 6 * 3600.0  # a call in progress longer than this is given up
ENDED_TTL = 3600.0  # ended calls stay to answer retries and status callbacks (or less:
# a call whose record is final goes then, `SessionStore.mark_recorded`)


class StoreUnavailable(IvrError):
    """A store did not answer (refused, timed out): raised by a store for what it could not
    read or write, so the webhooks answer from what they have (`Calls.fallback`)."""

    def __init__(self, store: str, operation: str, why: str) -> None:
        super().__init__(f"the {store} store is unreachable ({operation}: {why})")
        self.store, self.operation, self.why = store, operation, why


@dataclass(frozen=True)
class Stored:
    """A call's session as saved, with the reply its transport last sent."""

    session: Session
    reply: str  # the TwiML last returned, served again when Twilio retries a webhook


@dataclass(frozen=True)
class PendingFetch:
    """A backend call that outlived its turn (the caller is on hold): which turn waits
    for it, the process making it and when that process last showed it was alive, when
    its attempts are over, and its result once it has one. Any process serving the
    call's next webhook reads it from the store."""

    turn: int
    owner: str
    deadline: float  # Unix time
    beat: float  # Unix time
    result: FetchResult | None = None

    def to_json(self) -> bytes:
        r = self.result
        result = None if r is None else [r.status, r.body, r.error, r.at]
        return orjson.dumps([self.turn, self.owner, self.deadline, self.beat, result])

    @classmethod
    def from_json(cls, text: str | bytes) -> PendingFetch:
        turn, owner, deadline, beat, r = orjson.loads(text)
        result = None if r is None else FetchResult(r[0], r[1], r[2], at=r[3])
        return cls(turn, owner, deadline, beat, result)


class Sealing:
    """How a store keeps what it is given (sessions, replies, pending backend answers):
    sealed for their call by `keys` (`Keys.seal_session`), or as they are without keys
    (the memory store, which keeps nothing on disk)."""

    def __init__(self, keys: Keys | None) -> None:
        self.keys = keys

    def seal(self, call_id: str, text: str) -> str:
        return self.keys.seal_session(call_id, text) if self.keys else text

    def seal_turn(self, call_id: str, session: str, reply: str) -> tuple[str, str]:
        """What a store keeps as a session and its reply: both sealed together in the
        first (one AES-GCM operation a turn) and nothing in the second; without keys, as
        they are."""
        if self.keys is None:
            return session, reply
        return self.keys.seal_pair(call_id, session, reply), ""

    def open_turn(
        self, call_id: str, session: str | bytes, reply: str | bytes
    ) -> tuple[str, str] | None:
        """What `seal_turn` kept (or, saved before it, a session and a reply each sealed or
        plain); None (logged) when it does not open."""
        session = session.decode() if isinstance(session, bytes) else session
        if self.keys is None or not session.startswith(PAIRED):
            text, said = self.open(call_id, session), self.open(call_id, reply)
            return None if text is None else (text, said or "")
        try:
            return self.keys.open_pair(call_id, session)
        except (InvalidTag, ValueError):
            log.error("call %s: its stored session does not open with IVR_DATA_KEY", call_id)
            return None

    def open(self, call_id: str, text: str | bytes) -> str | None:
        """The text sealed for `call_id`; None (logged) when it does not open: sealed under
        another IVR_DATA_KEY, or for another call."""
        text = text.decode() if isinstance(text, bytes) else text
        if self.keys is None:
            return text
        try:
            return self.keys.open_session(call_id, text)
        except (InvalidTag, ValueError):
            log.error("call %s: its stored session does not open with IVR_DATA_KEY", call_id)
            return None


class SessionStore(Protocol):
    """Sessions are values: nobody changes a loaded or saved Session in place (the
    engine's step works on a copy), so a store may keep and hand out the same object."""

    async def load(self, call_id: str) -> Stored | None: ...

    async def save(self, session: Session, reply: str) -> None:
        """Durable before it returns. An ended session joins the outbox of unrecorded calls."""

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        """Held around load..save so two webhooks of one call never interleave."""

    async def stale(self, before: float) -> list[str]:
        """Calls in progress whose session was last saved before `before` (Unix time):
        the reaper ends those whose status callback never came."""

    async def unrecorded(self) -> list[Session]:
        """Ended sessions whose call record is not written yet."""

    async def mark_recorded(self, call_id: str, final: bool = False) -> None:
        """The call's record is written: it leaves the outbox. `final`: the record will
        not change any more (its status callback came, or the reaper closed the call), so
        the session goes too; until then it stays to answer Twilio's retries."""

    async def link(self, key: str, call_id: str, keep: float) -> None:
        """Let `key` (a channel and a customer's keyed hash) find `call_id` for `keep`
        seconds: how a text message finds the conversation it continues."""

    async def linked(self, key: str) -> str | None:
        """The conversation `key` finds, while its link lasts."""

    async def put_fetch(self, call_id: str, pending: PendingFetch) -> None:
        """Keep a call's pending backend call, where every process serving it sees it."""

    async def get_fetch(self, call_id: str) -> PendingFetch | None: ...

    async def drop_fetch(self, call_id: str) -> None: ...

    async def close(self) -> None: ...


class LocalFetches:
    """Pending backend calls of a store that one process uses: in memory, since a restart
    ends the calls they belong to anyway (a lost one counts as a call that timed out)."""

    def __init__(self) -> None:
        self._fetches: dict[str, PendingFetch] = {}

    async def put_fetch(self, call_id: str, pending: PendingFetch) -> None:
        self._fetches[call_id] = pending

    async def get_fetch(self, call_id: str) -> PendingFetch | None:
        return self._fetches.get(call_id)

    async def drop_fetch(self, call_id: str) -> None:
        self._fetches.pop(call_id, None)


class LocalLinks:
    """Links of a store one process uses: in memory (a restart forgets them, and with
    them where text conversations stood: their customers start again)."""

    def __init__(self) -> None:
        self._links: dict[str, tuple[str, float]] = {}

    async def link(self, key: str, call_id: str, keep: float) -> None:
        now = time.time()
        if len(self._links) > 10_000:  # expired ones are dropped when they are many
            self._links = {k: v for k, v in self._links.items() if v[1] > now}
        self._links[key] = (call_id, now + keep)

    async def linked(self, key: str) -> str | None:
        found = self._links.get(key)
        return found[0] if found is not None and found[1] > time.time() else None


class LocalLocks:
    """Per-call asyncio locks for stores used by one process; unused locks are dropped."""

    def __init__(self) -> None:
        self._locks: dict[str, _CallLock] = {}

    def __call__(self, call_id: str) -> AbstractAsyncContextManager[None]:
        lock = self._locks.get(call_id)
        if lock is None:
            lock = self._locks[call_id] = _CallLock(self._locks, call_id)
        return lock


class _CallLock:
    """A lock that leaves its table when its last user is done (a class: no generator per turn)."""

    def __init__(self, table: dict[str, _CallLock], call_id: str) -> None:
        self._table, self._call_id = table, call_id
        self._lock, self._users = asyncio.Lock(), 0

    async def __aenter__(self) -> None:
        self._users += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
        self._leave()

    def _leave(self) -> None:
        self._users -= 1
        if self._users == 0:
            del self._table[self._call_id]


def ttl(session: Session) -> float:
    return ENDED_TTL if session.ended else ACTIVE_TTL
