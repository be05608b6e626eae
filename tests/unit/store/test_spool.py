"""The spool: ended calls kept on local disk, sealed, until the session store is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.engine.session import Session
from ivr.keys import Keys
from ivr.store.spool import Spool

KEYS = Keys.for_tests()
SID = "CA" + "1" * 32
NUMBER = "+15557654321"


def ended(call_id: str = SID) -> Session:
    session = Session(call_id, "telebanking", "v1", started_at=100.0, turn=2)
    session.vars["caller"] = NUMBER
    session.outcome, session.reason, session.ended_at = "transferred", "on_error:store", 105.0
    return session


async def test_a_spooled_call_is_kept_sealed_and_found_again_after_a_restart(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool", KEYS)
    assert SID not in spool and len(spool) == 0
    await spool.put(ended(), "<Response><Dial>+15550199</Dial></Response>", counted=False)
    assert SID in spool and spool.calls() == [SID]
    files = list((tmp_path / "spool").iterdir())
    assert [f.name for f in files] == [f"{SID}.call"]  # no temporary file left
    raw = files[0].read_bytes()
    assert NUMBER.encode() not in raw and b"on_error" not in raw and b"Dial" not in raw
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700

    again = Spool(tmp_path / "spool", KEYS)  # a process that restarted
    kept = await again.get(SID)
    assert kept is not None and not kept.counted
    assert kept.session == ended() and kept.reply.startswith("<Response><Dial>")
    await again.drop(SID)
    assert SID not in again and await again.get(SID) is None
    assert list((tmp_path / "spool").iterdir()) == []


async def test_a_spooled_call_is_replaced_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path, KEYS)
    await spool.put(ended(), "first")
    later = ended()
    later.call_status = "completed"
    await spool.put(later, "first")
    kept = await spool.get(SID)
    assert kept is not None and kept.session.call_status == "completed" and kept.counted


async def test_a_call_id_that_is_no_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a call id"):
        await Spool(tmp_path, KEYS).put(ended("../../etc/passwd"), "")


async def test_a_spool_sealed_under_another_key_does_not_open(tmp_path: Path) -> None:
    await Spool(tmp_path, KEYS).put(ended(), "reply")
    other = Keys.for_tests()
    assert other != KEYS
    assert await Spool(tmp_path, other).get(SID) is None
