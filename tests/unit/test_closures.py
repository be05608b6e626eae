"""What `ivr hours close` and the admin API ask, checked against the flows: the hours and
flow must exist, `--until` is read in the hours' zone (and must be one zone), the message
is short; how a closure is listed; the cache keeps the last read when the store is down."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.closures import ClosuresCache, closure_for, describe
from ivr.flow import parse_and_compile
from ivr.flow.hours import Closure

NOW = datetime.fromisoformat("2026-12-15T10:00:00+05:00").timestamp()  # a Tuesday in Almaty


def flow(flow_id: str, tz: str) -> object:
    return parse_and_compile(
        f'flow: {flow_id}\nstart: a\nhours:\n  support: {{tz: {tz}, mon-fri: "09:00-18:00"}}\n'
        "  sales: {tz: UTC}\nnodes:\n  a: {end: {}}\n"
    )


BANK, SHOP = flow("bank", "Asia/Almaty"), flow("shop", "Europe/London")


def test_a_closure_until_a_time_in_the_hours_zone() -> None:
    closure = closure_for([BANK], "support", until="18:00", say="Back at six.", now=NOW)
    end = datetime.fromisoformat("2026-12-15T18:00:00+05:00").timestamp()
    assert closure == Closure("support", "", end, "Back at six.", NOW)
    spaced = closure_for([BANK], "support", say="  Back   at\nsix. ", now=NOW)
    assert spaced.message == "Back at six." and spaced.until is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"name": "suport"},
            LookupError,
            "no hours named 'suport' in the flows (hours: sales, support)",
        ),
        ({"name": "support", "flow_id": "nope"}, LookupError, "no flow 'nope' (flows: bank, shop)"),
        (
            {"name": "support", "until": "18:00"},
            ValueError,
            "the hours named 'support' are in Asia/Almaty, Europe/London: name one flow",
        ),
        ({"name": "support", "say": "x" * 501}, ValueError, "--say: 501 characters; at most 500"),
    ],
)
def test_what_cannot_be_closed_is_said(kwargs: dict[str, str], error: type, message: str) -> None:
    with pytest.raises(error) as e:
        closure_for([BANK, SHOP], now=NOW, **kwargs)  # type: ignore[arg-type]
    assert message in str(e.value.args[0])


def test_one_flow_or_an_offset_settles_the_zone() -> None:
    one = closure_for([BANK, SHOP], "support", "shop", until="18:00", now=NOW)
    assert (
        one.flow == "shop"
        and one.until == datetime.fromisoformat("2026-12-15T18:00+00:00").timestamp()
    )
    both = closure_for([BANK, SHOP], "support", until="2026-12-15T18:00+05:00", now=NOW)
    assert (
        both.flow == ""
        and both.until == datetime.fromisoformat("2026-12-15T18:00+05:00").timestamp()
    )


def test_a_closure_is_listed_in_its_hours_zone() -> None:
    closure = closure_for([BANK], "support", until="18:00", say="Training.", now=NOW)
    assert describe(closure, [BANK], NOW) == (
        'support in every flow, closed until 2026-12-15 18:00 Asia/Almaty: "Training."'
    )
    later = NOW + 9 * 3600
    assert describe(closure, [BANK], later).endswith('Asia/Almaty (ended): "Training."')
    assert describe(Closure("gone", "bank"), [BANK], NOW) == (
        "gone in flow bank, closed until reopened (no message)"
    )


class FlakyStore:
    """A records store that answers, then does not."""

    def __init__(self) -> None:
        self.rows = [Closure("support", message="Training.")]
        self.down = False

    async def closures(self) -> list[Closure]:
        if self.down:
            raise ConnectionError("records database is down")
        return list(self.rows)


async def test_the_cache_keeps_the_last_read_while_the_store_is_down() -> None:
    store = FlakyStore()
    cache = ClosuresCache(store)  # type: ignore[arg-type]
    assert cache() == ()
    await cache.refresh()
    assert cache() == (Closure("support", message="Training."),)
    store.down = True
    with pytest.raises(ConnectionError):
        await cache.refresh()
    assert cache() == (Closure("support", message="Training."),)
