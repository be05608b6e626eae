"""The spool: calls that ended while the session store was unreachable, kept on local disk
until that store takes them back, and with them the writing of their call records.

One file per call, named by its CallSid, holds its ended session and the reply Twilio
was given, sealed for that call (`Keys.seal_session`): nothing personal is in clear on
disk. Files are written the way maildir writes mail: to a temporary name, flushed to
disk, renamed into place, so a crash leaves the whole file or none. An outage is rare
and short, so a file per call needs no compaction, and a process that restarts finds
what it had spooled by listing the directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import orjson

from ivr.engine.session import Session
from ivr.keys import Keys
from ivr.store.base import LocalLocks, Sealing

log = logging.getLogger("ivr.store.spool")

SUFFIX = ".call"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a CallSid: CA and 32 hex digits


@dataclass(frozen=True)
class Spooled:
    """A call the webhooks ended while the store was unreachable: its session and reply."""

    session: Session
    reply: str
    counted: bool = True  # counted as ended when spooled (else: when the store takes it)


class Spool:
    """Spooled calls of this process, in `directory` (made 0700 when first needed)."""

    def __init__(self, directory: Path, keys: Keys) -> None:
        self.directory, self._sealing = directory, Sealing(keys)
        found = directory.glob(f"*{SUFFIX}") if directory.is_dir() else ()
        self._calls = {path.name.removesuffix(SUFFIX) for path in found}
        self._locks = LocalLocks()
        if self._calls:
            log.warning("%d call(s) spooled before a restart wait for the store", len(self))

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    def calls(self) -> list[str]:
        """The spooled calls, in CallSid order."""
        return sorted(self._calls)

    def lock(self, call_id: str) -> AbstractAsyncContextManager[None]:
        """Held around get..put or get..drop of one call, in this process."""
        return self._locks(call_id)

    async def put(self, session: Session, reply: str, counted: bool = True) -> None:
        """Keep (or replace) a call's ended session; on disk before this returns."""
        call_id = _checked(session.call_id)
        kept = {"session": session.to_json(), "reply": reply, "counted": counted}
        text = orjson.dumps(kept).decode()
        sealed = self._sealing.seal(call_id, text)
        await asyncio.to_thread(self._write, call_id, sealed)
        self._calls.add(call_id)

    async def get(self, call_id: str) -> Spooled | None:
        if call_id not in self._calls:
            return None
        path = self._path(call_id)
        try:
            sealed = await asyncio.to_thread(path.read_text)
        except FileNotFoundError:
            self._calls.discard(call_id)
            return None
        text = self._sealing.open(call_id, sealed)
        if text is None:  # sealed under another IVR_DATA_KEY: logged by Sealing
            return None
        data = orjson.loads(text)
        return Spooled(Session.from_json(data["session"]), data["reply"], data["counted"])

    async def drop(self, call_id: str) -> None:
        """Forget a call the store has taken back."""
        self._calls.discard(call_id)
        await asyncio.to_thread(self._path(call_id).unlink, missing_ok=True)

    def _path(self, call_id: str) -> Path:
        return self.directory / f"{_checked(call_id)}{SUFFIX}"

    def _write(self, call_id: str, sealed: str) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self._path(call_id)
        temporary = final.with_name(f".{final.name}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(sealed)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself is durable
        finally:
            os.close(directory)


def _checked(call_id: str) -> str:
    if not _NAME.fullmatch(call_id):
        raise ValueError(f"not a call id a file may be named by: {call_id[:80]!r}")
    return call_id
