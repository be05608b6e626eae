"""Redis sessions: shared by several `ivr serve` processes, with a distributed per-call lock."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.asyncio
from redis.exceptions import LockNotOwnedError

from ivr.engine.session import Session
from ivr.errors import IvrError
from ivr.keys import Keys
from ivr.store.base import LocalLocks, PendingFetch, Sealing, Stored, ttl

log = logging.getLogger("ivr.store.redis")

LOCK_TTL = 30.0  # a holder that crashed frees the call after this long
LOCK_WAIT = 15.0  # Twilio gives up on a webhook after 15 s, so waiting longer is useless
OUTBOX = "ivr:unrecorded"
ACTIVE = "ivr:active"  # calls in progress by when their session was last saved
FETCH_KEPT = 60.0  # a pending backend call is kept this long past its deadline


class SessionLocked(IvrError):
    """The lock of a call could not be taken in time."""


def _key(call_id: str) -> str:
    return f"ivr:session:{call_id}"


def _outbox_key(call_id: str) -> str:
    # the outbox keeps its own copy without expiry, so a records store that is down
    # longer than ENDED_TTL loses no call
    return f"ivr:unrecorded:{call_id}"


class RedisSessions:
    def __init__(self, url: str, keys: Keys | None = None) -> None:
        # decode_responses: every value read back is a str (the str() calls below only say so)
        self._client = redis.asyncio.from_url(url, decode_responses=True)
        self._local = LocalLocks()
        self._sealing = Sealing(keys)  # nothing personal in clear in Redis's memory or dump

    async def load(self, call_id: str) -> Stored | None:
        session, reply = await self._client.hmget(_key(call_id), ["session", "reply"])
        if session is None or reply is None:
            return None
        text, reply = self._sealing.open(call_id, session), self._sealing.open(call_id, reply)
        return None if text is None else Stored(Session.from_json(text), reply or "")

    async def save(self, session: Session, reply: str) -> None:
        call_id, seal = session.call_id, self._sealing.seal
        text, reply, key = seal(call_id, session.to_json()), seal(call_id, reply), _key(call_id)
        # MULTI: the session, its expiry and its place in the outbox change together
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"session": text, "reply": reply})
            pipe.pexpire(key, max(1, int(ttl(session) * 1000)))
            if session.ended:
                pipe.set(_outbox_key(session.call_id), text)
                pipe.sadd(OUTBOX, session.call_id)
                pipe.zrem(ACTIVE, session.call_id)
            else:
                pipe.zadd(ACTIVE, {session.call_id: time.time()})
            await pipe.execute()

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._lock(call_id)

    @asynccontextmanager
    async def _lock(self, call_id: str) -> AsyncIterator[None]:
        # waiters in this process queue on an asyncio lock, so only one of them polls Redis
        async with self._local(call_id):
            lock = self._client.lock(
                f"ivr:lock:{call_id}",
                timeout=LOCK_TTL,
                blocking_timeout=LOCK_WAIT,
                thread_local=False,  # the token belongs to this Lock object, not to the thread
            )
            if not await lock.acquire():
                raise SessionLocked(
                    f"call {call_id}: its session lock in Redis is still held after "
                    f"{LOCK_WAIT:g} s (another `ivr serve` process is on this call, or a crashed "
                    f"holder's lock has not expired yet: it does after {LOCK_TTL:g} s)"
                )
            try:
                yield
            finally:
                try:
                    await lock.release()
                except LockNotOwnedError:
                    log.warning(
                        "held the lock of call %s longer than %g s: it expired, so another "
                        "process may have stepped the call meanwhile",
                        call_id,
                        LOCK_TTL,
                    )

    async def stale(self, before: float) -> list[str]:
        stale = [str(c) for c in await self._client.zrangebyscore(ACTIVE, "-inf", before)]
        gone = [c for c in stale if not await self._client.exists(_key(c))]
        if gone:  # expired without an end: nothing left to close
            await self._client.zrem(ACTIVE, *gone)
        return [c for c in stale if c not in gone]

    async def unrecorded(self) -> list[Session]:
        ids = sorted(str(c) for c in await self._client.smembers(OUTBOX))
        if not ids:
            return []
        stored = await self._client.mget([_outbox_key(c) for c in ids])
        texts = (self._sealing.open(c, t) for c, t in zip(ids, stored, strict=True) if t)
        return [Session.from_json(text) for text in texts if text is not None]

    async def mark_recorded(self, call_id: str) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.srem(OUTBOX, call_id)
            pipe.delete(_outbox_key(call_id))
            await pipe.execute()

    async def put_fetch(self, call_id: str, pending: PendingFetch) -> None:
        keep = int((max(0.0, pending.deadline - time.time()) + FETCH_KEPT) * 1000)
        text = self._sealing.seal(call_id, pending.to_json().decode())  # a backend's answer
        await self._client.set(f"ivr:fetch:{call_id}", text, px=keep)

    async def get_fetch(self, call_id: str) -> PendingFetch | None:
        stored = await self._client.get(f"ivr:fetch:{call_id}")
        text = None if stored is None else self._sealing.open(call_id, stored)
        return None if text is None else PendingFetch.from_json(text)

    async def drop_fetch(self, call_id: str) -> None:
        await self._client.delete(f"ivr:fetch:{call_id}")

    async def close(self) -> None:
        await self._client.aclose()
