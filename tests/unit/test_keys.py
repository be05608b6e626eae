"""The sealing of sessions: AES-GCM nonces never repeat, in a process or across a fork; a
session and its reply seal together, bound to their call."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from ivr import keys
from ivr.keys import Keys


def test_nonces_never_repeat_and_renew_when_the_count_runs_out() -> None:
    nonces = keys._Nonces()
    made = [nonces() for _ in range(10_000)]
    assert len(set(made)) == len(made) and all(len(n) == 12 for n in made)
    prefix = made[0][:8]
    nonces._count = iter([1 << 32, 0, 1])  # the count ran out
    assert nonces()[:8] != prefix


def test_a_forked_process_draws_its_own_nonces() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first nonce, to the parent
        os.write(write, keys._nonce())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 12)
    assert child[:8] != keys._nonce()[:8]


def test_a_session_opens_with_its_keys_and_call_only() -> None:
    ours = Keys.for_tests()
    token = ours.seal_session("CA1", "{}")
    assert ours.open_session("CA1", token) == "{}"
    assert ours.seal_session("CA1", "{}") != token  # a new nonce each time


def test_a_session_and_its_reply_seal_together_and_open_with_their_call_only() -> None:
    ours, theirs = Keys.for_tests(), Keys.for_tests()
    session, reply = '{"vars": {"caller": "+15551234567"}}', "<Response><Say>Hi</Say></Response>"
    token = ours.seal_pair("CA1", session, reply)
    assert token.startswith(keys.PAIRED) and "+1555" not in token
    assert ours.open_pair("CA1", token) == (session, reply)
    assert ours.open_pair("CA1", ours.seal_pair("CA1", "", "")) == ("", "")
    assert ours.seal_pair("CA1", session, reply) != token  # a new nonce each time
    for opener, call in ((ours, "CA2"), (theirs, "CA1")):
        with pytest.raises(InvalidTag):
            opener.open_pair(call, token)
    with pytest.raises(ValueError):
        ours.open_pair("CA1", ours.seal_session("CA1", session))  # one text, not a pair


def test_a_whatsapp_address_is_the_customer_of_its_number() -> None:
    ours = Keys.for_tests()
    plain = ours.customer_id("+15550001")
    assert plain is not None and plain.startswith("c_")
    assert ours.customer_id("whatsapp:+15550001") == plain
    assert ours.customer_id(" WhatsApp:+15550001 ") == plain
    assert ours.customer_id("+15550002") != plain
    assert "15550001" not in plain  # a keyed hash, never the number


def test_a_chat_identity_is_a_customer_of_its_own() -> None:
    ours = Keys.for_tests()
    chat = ours.customer_id("chat:visitor-42")
    assert chat is not None and chat == ours.customer_id("chat:visitor-42")
    assert chat not in (ours.customer_id("visitor-42"), ours.customer_id("chat:visitor-43"))
    assert "visitor" not in chat


@pytest.mark.parametrize(
    "address", ["", "anonymous", "Restricted", "+266696687", "whatsapp:", "chat:", "chat:  "]
)
def test_a_withheld_number_or_empty_identity_has_no_customer(address: str) -> None:
    assert Keys.for_tests().customer_id(address) is None


def test_the_customer_of_a_number_does_not_depend_on_the_key_holder_only() -> None:
    # another key, another id: the HMAC is keyed, so ids cannot be looked up from numbers
    assert Keys.for_tests().customer_id("+15550001") != Keys.for_tests().customer_id("+15550001")
