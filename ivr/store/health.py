"""Whether the stores answer: what `/healthz` reports, and when spooled calls go back.

A store is unreachable from the moment one of its operations fails for want of an
answer (a refused connection, a timeout), and reachable again when one succeeds or a
ping answers; `Calls.check_stores` pings every `PING_EVERY` seconds, so `/healthz`
follows an outage within about a second either way, calls or none.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

log = logging.getLogger("ivr.store")

PING_EVERY = 1.0  # seconds between pings of a store that can be pinged


@runtime_checkable
class Pingable(Protocol):
    """A store that can say cheaply whether it answers (Redis: PING)."""

    async def ping(self) -> None:
        """Return when the store answers; StoreUnavailable when it does not."""


class StoreHealth:
    """The stores found unreachable and why, by store name (sessions, records): made by the
    server, told by the webhooks, the record writer and pings, read by `/healthz`."""

    def __init__(self) -> None:
        self._down: dict[str, str] = {}

    def failed(self, store: str, why: str) -> None:
        if store not in self._down:
            log.error("the %s store is unreachable: %s", store, why)
        self._down[store] = why

    def answered(self, store: str) -> None:
        if self._down.pop(store, None) is not None:
            log.warning("the %s store answers again", store)

    def reachable(self, store: str) -> bool:
        return store not in self._down

    @property
    def problems(self) -> dict[str, str]:
        """Unreachable stores and why; empty when all answer."""
        return dict(self._down)
