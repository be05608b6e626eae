"""Twilio's SMS keywords, and a STOP recorded by customer key (never the number)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.keys import Keys
from ivr.notify.optout import keyword, record_start, record_stop
from ivr.store.campaigns import open_campaigns


@pytest.mark.parametrize(
    ("text", "word"),
    [
        *((w, "stop") for w in ("STOP", "stopall", "Unsubscribe", "cancel", "END", "quit")),
        *((w, "stop") for w in ("optout", "REVOKE", "  stop  ", "Stop.", "STOP!")),
        *((w, "start") for w in ("START", "yes", "Unstop")),
        *((w, "help") for w in ("HELP", "info", " Help ")),
        *((w, None) for w in ("stop calling me", "", None, "balance", "stops", "1")),
    ],
)
def test_keywords(text: str | None, word: str | None) -> None:
    assert keyword(text) == word


async def test_a_stop_is_kept_by_customer_key_and_a_start_lifts_it(tmp_path: Path) -> None:
    keys, store = Keys.for_tests(), open_campaigns(f"sqlite://{tmp_path / 'calls.db'}")
    try:
        assert await record_stop(store, keys, "+12125550100", at=5.0) is True
        key = keys.customer_id("+12125550100")
        assert key and await store.optouts() == [(key, "sms", 5.0)]
        assert await record_stop(store, keys, "anonymous") is False  # nothing to key
        assert await record_start(store, keys, "+12125550100") is True
        assert await store.optouts() == []
    finally:
        await store.close()
    assert b"2125550100" not in (tmp_path / "calls.db").read_bytes()
