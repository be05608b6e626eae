"""Outbound calls: the variables in the webhook URL, and where an answered call starts."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ivr.engine import actions as act
from ivr.engine import new_session, step
from ivr.engine.events import CallStarted
from ivr.flow import parse_and_compile
from ivr.telephony.outbound import check_vars, decode_vars, encode_vars, status_url, voice_url

GIVEN = {"order": "123456", "amount": 12.5, "items": ["a", "b"], "note": "ünïcode & +=?"}


def test_vars_go_through_the_url_and_back_unchanged():
    url = voice_url("https://ivr.example.com/", "delivery_notice", GIVEN)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "ivr.example.com", "/twilio/voice")
    query = parse_qs(parts.query)
    assert query["flow"] == ["delivery_notice"]
    (encoded,) = query["vars"]
    assert encoded == encode_vars(GIVEN) and encoded.replace("-", "").replace("_", "").isalnum()
    assert decode_vars(encoded) == GIVEN
    assert voice_url("https://x", "f") == "https://x/twilio/voice?flow=f"
    assert status_url("https://x/", "f") == "https://x/twilio/status?flow=f"


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ([1, 2], "expected a JSON object"),
        ({"1st": 1}, "'1st' is not a variable name"),
        ({"caller": "+1555"}, "'caller' is set by the call itself"),
        ({"big": "x" * 3000}, "more than 2048 bytes"),
    ],
)
def test_bad_vars_are_refused_with_the_reason(given, problem):
    with pytest.raises(ValueError, match=problem):
        check_vars(given)


@pytest.mark.parametrize("text", ["!!!", "bm90IGpzb24", encode_vars({"caller": "x"})])
def test_vars_that_cannot_be_read_are_refused(text):
    with pytest.raises(ValueError):
        decode_vars(text)


FLOW = """
flow: notice
start: hello
vars: {order: ""}
nodes:
  hello: {say: "Order {{ order }} has shipped.", next: bye}
  bye: {end: {say: "Bye."}}
"""


@pytest.mark.parametrize(
    ("answered_by", "voicemail", "path", "outcome", "said"),
    [
        ("human", True, ["hello", "bye"], "contained", "Order 42 has shipped."),
        ("unknown", True, ["hello", "bye"], "contained", "Order 42 has shipped."),
        ("", True, ["hello", "bye"], "contained", "Order 42 has shipped."),
        ("machine_end_beep", True, ["vm", "bye"], "contained", "Sorry we missed you: 42."),
        ("machine_end_silence", True, ["vm", "bye"], "contained", "Sorry we missed you: 42."),
        ("fax", True, ["vm", "bye"], "contained", "Sorry we missed you: 42."),
        ("machine_end_other", False, [], "abandoned", None),
    ],
)
def test_an_answering_machine_starts_at_the_voicemail_node(
    answered_by, voicemail, path, outcome, said
):
    text = FLOW + '  vm: {say: "Sorry we missed you: {{ order }}.", next: bye}\n'
    if voicemail:
        text = text.replace("start: hello\n", "start: hello\nvoicemail: vm\n")
    flow = parse_and_compile(text, "notice.yaml")
    event = CallStarted("+15557654321", "+15550111", {"order": "42"}, answered_by, at=1.0)
    session, actions = step(flow, new_session(flow, "CA1"), event)
    assert (session.path, session.outcome) == (path, outcome)
    prompts = [a.text for a in actions if isinstance(a, act.Prompt)]
    assert (prompts[0] if prompts else None) == said
    assert session.vars["order"] == "42"
    if answered_by:
        assert session.vars["answered_by"] == answered_by
        assert session.transcript[0][2:] == ["answered_by", answered_by]


def test_a_voicemail_node_that_is_not_there_is_a_located_error():
    from ivr.errors import FlowError

    with pytest.raises(FlowError) as e:
        parse_and_compile(FLOW.replace("start: hello\n", "start: hello\nvoicemail: vn\n"), "n.yaml")
    assert [str(p) for p in e.value.problems] == ["n.yaml:4:12: voicemail: 'vn' is not a node"]
