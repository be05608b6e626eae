"""Redis sessions: shared by several `ivr serve` processes, with a distributed per-call lock.

Redis that is down or stalled must not hold a webhook past its turn budget: every
command gives up after `TIMEOUT` (no retries but one on a fresh connection, for a pooled
one Redis closed), a call's lock is waited for at most `lock_wait` (half the turn budget),
and what fails raises `StoreUnavailable`, so the webhook answers the flow's fallback. A
lock an outage may have left in Redis (taken by a command that timed out on a stalled
Redis, or not freed for want of an answer) is freed by the next ping Redis answers; one
a crashed process held expires after `LOCK_TTL` (its holder renews it while alive).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

import redis.asyncio
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError, LockNotOwnedError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ivr.engine.session import Session
from ivr.errors import IvrError
from ivr.keys import Keys
from ivr.store.base import LocalLocks, PendingFetch, Sealing, Stored, StoreUnavailable, ttl

log = logging.getLogger("ivr.store.redis")

# a holder that crashed frees the call after this long: under LOCK_WAIT, so a webhook a
# load balancer passed on from a killed process gets the call; a live holder renews it
LOCK_TTL = 3.0
LOCK_WAIT = 5.0  # half the default turn budget: a webhook that waited has time left to answer
# seconds a command (or a connection) may take: Redis answers in well under a millisecond,
# so this only ends waiting for one that is stalled, twice within a turn's budget at worst
TIMEOUT = 1.0
# connections to Redis one process may have open; past that a command waits for one (as
# long as a lock may be waited for: waiting means a busy process, not a stalled Redis,
# since a stall frees each connection after its own TIMEOUT). redis-py's own pool
# refuses the 101st at once: at 100 calls at a time callers heard the apology (found by
# bench/soak.py), and 100 calls resent at once to a restarted process went to the fallback
POOL = 512
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
OUTBOX = "ivr:unrecorded"
ACTIVE = "ivr:active"  # calls in progress by when their session was last saved
FETCH_KEPT = 60.0  # a pending backend call is kept this long past its deadline
MAX_GHOSTS = 10_000  # locks an outage may have left behind, remembered to be freed


class SessionLocked(IvrError):
    """The lock of a call could not be taken in time."""


def _key(call_id: str) -> str:
    return f"ivr:session:{call_id}"


def _outbox_key(call_id: str) -> str:
    # the outbox keeps its own copy without expiry, so a records store that is down
    # longer than ENDED_TTL loses no call
    return f"ivr:unrecorded:{call_id}"


class RedisSessions:
    def __init__(self, url: str, keys: Keys | None = None, lock_wait: float | None = None) -> None:
        # decode_responses: every value read back is a str (the str() calls below only say so);
        # one retry, at once and on connection errors only: a pooled connection Redis closed
        # (a restart) is replaced, and a stalled Redis costs one TIMEOUT, not ten
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL,
            timeout=LOCK_WAIT if lock_wait is None else lock_wait,
            decode_responses=True,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._client = redis.asyncio.Redis.from_pool(pool)  # closed with the client
        self.lock_wait = lock_wait  # None: LOCK_WAIT
        self._local = LocalLocks()
        self._sealing = Sealing(keys)  # nothing personal in clear in Redis's memory or dump
        # locks Redis may hold without this process knowing: taken by a command that timed
        # out on a stalled Redis, which runs it once resumed (or not freed for want of an
        # answer); freed once Redis answers, not LOCK_TTL later
        self._ghosts: dict[str, tuple[Lock, bytes]] = {}
        self._failed = 0.0  # when (monotonic) a command last went unanswered

    @contextmanager
    def _reaching(self, operation: str) -> Iterator[None]:
        """Redis's connection errors and timeouts, as the StoreUnavailable webhooks handle."""
        try:
            yield
        except UNREACHABLE as e:
            self._failed = time.monotonic()
            raise StoreUnavailable("sessions", operation, f"{type(e).__name__}: {e}") from e

    async def ping(self) -> None:
        """Whether Redis answers (StoreUnavailable when it does not); once it does, the
        locks an outage left behind are freed."""
        with self._reaching("ping"):
            await self._client.ping()
            while self._ghosts:
                name, (lock, token) = next(iter(self._ghosts.items()))
                try:
                    await lock.do_release(token)
                except LockError:  # never taken, expired, or taken by another since
                    pass
                del self._ghosts[name]

    async def load(self, call_id: str) -> Stored | None:
        with self._reaching("load"):
            session, reply = await self._client.hmget(_key(call_id), ["session", "reply"])
        if session is None or reply is None:
            return None
        opened = self._sealing.open_turn(call_id, session, reply)
        return None if opened is None else Stored(Session.from_json(opened[0]), opened[1])

    async def save(self, session: Session, reply: str) -> None:
        call_id, key = session.call_id, _key(session.call_id)
        text, reply = self._sealing.seal_turn(call_id, session.to_json(), reply)
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
            with self._reaching("save"):
                await pipe.execute()

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        return self._lock(call_id)

    @asynccontextmanager
    async def _lock(self, call_id: str) -> AsyncIterator[None]:
        # waiters in this process queue on an asyncio lock, so only one of them polls Redis
        async with self._local(call_id):
            wait = LOCK_WAIT if self.lock_wait is None else self.lock_wait
            lock = self._client.lock(
                f"ivr:lock:{call_id}",
                timeout=LOCK_TTL,
                blocking_timeout=wait,
                thread_local=False,  # the token belongs to this Lock object, not to the thread
            )
            token = secrets.token_hex(16).encode()
            try:
                with self._reaching("lock"):
                    acquired = await lock.acquire(token=token)
            except StoreUnavailable:
                self._ghost(lock, token)
                raise
            if not acquired:
                raise SessionLocked(
                    f"call {call_id}: its session lock in Redis is still held after "
                    f"{wait:g} s (another `ivr serve` process is on this call, or a "
                    f"crashed holder's lock has not expired yet: it does after {LOCK_TTL:g} s)"
                )
            taken = time.monotonic()
            renewing = asyncio.create_task(self._renew(lock, call_id))
            try:
                yield
            finally:
                renewing.cancel()
                if self._failed >= taken:  # not waited for again: freed once Redis answers
                    self._ghost(lock, token)
                else:
                    await self._release(lock, token, call_id)

    async def _renew(self, lock: Lock, call_id: str) -> None:
        """Keep a held lock from expiring while its turn runs (a backend call may take
        the whole turn budget); stops when the lock is lost."""
        while True:
            await asyncio.sleep(LOCK_TTL / 3)  # two renewals may be late before it expires
            try:
                await lock.reacquire()
            except LockError:
                log.warning("the lock of call %s expired while held", call_id)
                return
            except UNREACHABLE:  # a stalled Redis: the turn's own commands find out
                pass

    async def _release(self, lock: Lock, token: bytes, call_id: str) -> None:
        """Free a call's lock; one that cannot be freed now is freed once Redis answers."""
        try:
            await lock.release()
        except LockNotOwnedError:
            log.warning(
                "the lock of call %s expired while held (renewals failed for %g s), so "
                "another process may have stepped the call meanwhile",
                call_id,
                LOCK_TTL,
            )
        except UNREACHABLE as e:
            log.warning(
                "the lock of call %s could not be freed yet (%s)", call_id, type(e).__name__
            )
            self._ghost(lock, token)

    def _ghost(self, lock: Lock, token: bytes) -> None:
        if len(self._ghosts) < MAX_GHOSTS:  # past that, LOCK_TTL frees them
            self._ghosts[str(lock.name)] = (lock, token)

    async def stale(self, before: float) -> list[str]:
        with self._reaching("load"):
            stale = [str(c) for c in await self._client.zrangebyscore(ACTIVE, "-inf", before)]
            gone = [c for c in stale if not await self._client.exists(_key(c))]
            if gone:  # expired without an end: nothing left to close
                await self._client.zrem(ACTIVE, *gone)
        return [c for c in stale if c not in gone]

    async def unrecorded(self) -> list[Session]:
        with self._reaching("load"):
            ids = sorted(str(c) for c in await self._client.smembers(OUTBOX))
            if not ids:
                return []
            stored = await self._client.mget([_outbox_key(c) for c in ids])
        # the outbox keeps the session as saved: with its reply when sealed together
        opened = (self._sealing.open_turn(c, t, "") for c, t in zip(ids, stored, strict=True) if t)
        return [Session.from_json(kept[0]) for kept in opened if kept is not None]

    async def mark_recorded(self, call_id: str, final: bool = False) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.srem(OUTBOX, call_id)
            pipe.delete(_outbox_key(call_id))
            if final:
                pipe.delete(_key(call_id), f"ivr:fetch:{call_id}")
            with self._reaching("save"):
                await pipe.execute()

    async def link(self, key: str, call_id: str, keep: float) -> None:
        with self._reaching("save"):
            await self._client.set(f"ivr:link:{key}", call_id, px=max(1, int(keep * 1000)))

    async def linked(self, key: str) -> str | None:
        with self._reaching("load"):
            found = await self._client.get(f"ivr:link:{key}")
        return None if found is None else str(found)

    async def put_fetch(self, call_id: str, pending: PendingFetch) -> None:
        keep = int((max(0.0, pending.deadline - time.time()) + FETCH_KEPT) * 1000)
        text = self._sealing.seal(call_id, pending.to_json().decode())  # a backend's answer
        with self._reaching("save"):
            await self._client.set(f"ivr:fetch:{call_id}", text, px=keep)

    async def get_fetch(self, call_id: str) -> PendingFetch | None:
        with self._reaching("load"):
            stored = await self._client.get(f"ivr:fetch:{call_id}")
        text = None if stored is None else self._sealing.open(call_id, stored)
        return None if text is None else PendingFetch.from_json(text)

    async def drop_fetch(self, call_id: str) -> None:
        with self._reaching("save"):
            await self._client.delete(f"ivr:fetch:{call_id}")

    async def close(self) -> None:
        await self._client.aclose()
