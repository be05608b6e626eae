"""A campaign's attempts: what was tried for each row of its file, and what each status means.

One row per attempt is kept (ivr/store/campaigns.py): the attempt is written before the
call is placed, so a campaign interrupted and run again knows whom it may have called.
Twilio's call statuses (and message statuses, for text campaigns) are kept as Twilio said
them; the campaign's own decisions have statuses of their own (`opted-out`, `invalid`,
`outside-window`, `interrupted`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

DIALING = "dialing"  # written before the dialer is asked: the call may have been placed
# a dialing attempt found on a re-run: the process died while placing it, so whether the
# call went out is unknown; never tried again (nobody is called twice), counted as failed
INTERRUPTED = "interrupted"
OPTED_OUT, INVALID, OUTSIDE = "opted-out", "invalid", "outside-window"
DECIDED = frozenset({OPTED_OUT, INVALID, OUTSIDE, INTERRUPTED})  # no call was placed
# Twilio's final call statuses, then its message statuses that end a text's journey
CALL_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
TEXT_FINAL = frozenset({"sent", "delivered", "read", "undelivered", "failed", "canceled"})
FINAL = CALL_FINAL | TEXT_FINAL | DECIDED
RETRYABLE = frozenset({"busy", "no-answer", "failed", "undelivered"})

# `ivr campaigns show`: the category of a row's last attempt
CATEGORIES = (
    "reached",
    "machine",
    "busy",
    "no-answer",
    "failed",
    "opted-out",
    "outside-window",
    "invalid",
    "pending",
)


@dataclass(frozen=True)
class Attempt:
    """One try at one row of a campaign file (`line`, the file's line number): made by
    the campaign, kept by the campaign store, counted by `ivr campaigns show`. `customer`
    is the keyed HMAC of the number (Keys.customer_id), never the number."""

    campaign: str
    line: int
    attempt: int  # 1, 2, ...; 0 for a row decided before any call (invalid, opted out)
    status: str
    customer: str | None = None
    call_sid: str | None = None
    answered_by: str | None = None  # Twilio's AnsweredBy: human, machine_start, fax...
    reason: str | None = None  # why a row was decided, or the dialer's error
    at: float = 0.0  # when it was started or decided
    updated_at: float = 0.0

    @property
    def callee(self) -> str:
        """Who the attempt was for: the customer key, else (an invalid row) the line."""
        return self.customer or f"line:{self.line}"

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def machine(self) -> bool:
        """Answered by a machine (answering-machine detection said so)."""
        by = self.answered_by or ""
        return self.status == "completed" and (by.startswith("machine") or by == "fax")

    def retryable(self, machine_too: bool = False) -> bool:
        """Worth another call: busy, no answer, failed (a machine too when the campaign
        says `--retry-machine`). Completed and opted-out are final."""
        return self.status in RETRYABLE or (machine_too and self.machine)

    @property
    def category(self) -> str:
        """Where the row stands when this is its last attempt (one of CATEGORIES)."""
        if not self.final:
            return "pending"
        if self.machine:
            return "machine"
        if self.status in ("completed", "sent", "delivered", "read"):
            return "reached"
        if self.status in ("busy", "no-answer", OPTED_OUT, INVALID, OUTSIDE):
            return self.status
        return "failed"  # failed, canceled, undelivered, interrupted

    def moved(
        self,
        status: str,
        at: float,
        call_sid: str | None = None,
        answered_by: str | None = None,
        reason: str | None = None,
    ) -> Attempt:
        """This attempt with a new status (and what came with it; None keeps what was)."""
        return replace(
            self,
            status=status,
            updated_at=at,
            call_sid=call_sid or self.call_sid,
            answered_by=answered_by or self.answered_by,
            reason=reason or self.reason,
        )


def latest(attempts: Iterable[Attempt]) -> dict[str, Attempt]:
    """Each callee's last attempt, by customer key (a row moved to another line of an
    edited file run again with the same --name is still the same callee), or by line for
    a row with no key (an invalid one)."""
    last: dict[str, Attempt] = {}
    for attempt in attempts:
        known = last.get(attempt.callee)
        if known is None or attempt.attempt >= known.attempt:
            last[attempt.callee] = attempt
    return last


def tally(attempts: Iterable[Attempt], rows: int) -> dict[str, int]:
    """Rows by where they stand (CATEGORIES), from each callee's last attempt; rows of the
    file with no attempt yet are pending."""
    last = latest(attempts)
    counts = dict.fromkeys(CATEGORIES, 0)
    for attempt in last.values():
        counts[attempt.category] += 1
    counts["pending"] += max(0, rows - len(last))
    return counts
