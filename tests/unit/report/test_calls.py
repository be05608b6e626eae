"""`ivr calls`: transcript lines in words, masked numbers, the listing's filters."""

from __future__ import annotations

import pytest

from ivr.report.calls import Listing, masked, said


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (["prompt"], "heard the prompt"),
        (["say"], "heard"),
        (["repeat"], "heard the prompt again"),
        (["no_match:2"], "heard the no match re-prompt (attempt 2)"),
        (["no_input:3"], "heard the no input re-prompt (attempt 3)"),
        (["dtmf", "match", "1"], "pressed '1': matched"),
        (["dtmf", "no_match", "****"], "pressed '****': no match"),
        (["speech", "no_match", "pizza", 0.41], "said 'pizza' (confidence 0.41): no match"),
        (["speech", "unsure", "balance", 0.3], "said 'balance' (confidence 0.30): unsure"),
        (["silence", "no_input"], "silence: no input"),
        (["confirm"], "asked to confirm"),
        (["fetch", 200], "backend answered 200"),
        (["fetch", "timeout"], "backend answered timeout"),
        (["hangup"], "the caller hung up"),
        (["recorded", 12.5], "recorded a message of 12.5 s"),
        (["something", "new"], "something new"),  # a kind from a later ivr: as it is
    ],
)
def test_transcript_lines_in_words(line: list[object], words: str) -> None:
    assert said(line) == words


def test_numbers_are_masked_but_their_last_two_digits() -> None:
    assert masked("+15557654321") == "**********21"
    assert masked("+15557654321", reveal=True) == "+15557654321"
    assert masked("7") == "7" and masked(None) == "-"


def test_the_listing_filters_by_the_node_a_call_left_at() -> None:
    where, args = Listing(outcome="transferred", node="main", since=10.0).where()
    assert where == " WHERE outcome = ? AND (last_node = ? OR transfer_from = ?) AND ended_at >= ?"
    assert args == ["transferred", "main", "main", 10.0]
    assert Listing().where() == ("", [])
