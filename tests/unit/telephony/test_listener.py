"""What a stream call's keys, voice and silence mean at one listen (times: stream seconds)."""

from __future__ import annotations

import pytest

from ivr.engine.session import Session
from ivr.flow import parse_and_compile
from ivr.flow.model import Flow, Listen
from ivr.speech.recognizer import Heard
from ivr.telephony.listener import MAX_UTTERANCE, NOTHING, Decision, Listener, understanding

MENU = Listen("main", frozenset({"dtmf", "speech"}), 5.0, True, keys="120", phrases=("예금 잔액",))
ASK = Listen(
    "ask", frozenset({"dtmf", "speech"}), 5.0, True, min_digits=4, max_digits=6, finish_on="#"
)
NO_BARGE_IN = Listen("main", frozenset({"dtmf", "speech"}), 5.0, False, keys="12")

FLOW = """
flow: f
language: ko-KR
start: main
nodes:
  main:
    menu:
      prompt: "메뉴"
      confirm_below: 0.5
      options:
        balance: {dtmf: "1", speech: [예금 잔액, 잔액], goto: ask}
        hours: {dtmf: "2", speech: [영업 시간], goto: ask}
  ask:
    ask: {prompt: "번호", input: digits, digits: {min: 3, max: 4}, save_as: n}
    next: free
  free:
    ask: {prompt: "말씀하세요", input: speech, save_as: said}
    next: bye
  bye:
    end: {say: "안녕히 계세요"}
"""


@pytest.fixture(scope="module")
def flow() -> Flow:
    return parse_and_compile(FLOW, "f.yaml", {})


# -- silence -------------------------------------------------------------------------------------


def test_silence_counts_from_the_end_of_the_prompt():
    listener = Listener(MENU, speech=True, at=0.0, playing=True)
    assert listener.tick(30.0) is NOTHING  # the prompt plays: no timer yet
    listener.played(31.0)
    assert listener.tick(35.98) is NOTHING
    assert listener.tick(36.0) == Decision(event="no_input")
    assert listener.done
    assert listener.tick(50.0) is NOTHING  # once


def test_a_listen_after_the_prompt_counts_at_once():
    listener = Listener(MENU, speech=False, at=10.0, playing=False)
    assert listener.tick(15.0) == Decision(event="no_input")


# -- keys ----------------------------------------------------------------------------------------


def test_a_menu_key_during_the_prompt_barges_in():
    listener = Listener(MENU, speech=True, at=0.0, playing=True)
    assert listener.key("1", 1.0) == Decision(clear=True, event="digits", digits="1")
    assert listener.done


def test_a_menu_key_after_the_prompt_does_not_clear():
    listener = Listener(MENU, speech=True, at=0.0, playing=False)
    assert listener.key("9", 1.0) == Decision(event="digits", digits="9")  # the engine: no match


def test_without_barge_in_keys_wait_for_the_prompt():
    listener = Listener(NO_BARGE_IN, speech=True, at=0.0, playing=True)
    assert not listener.open
    assert listener.key("1", 1.0) is NOTHING
    listener.played(2.0)
    assert listener.key("1", 2.5) == Decision(event="digits", digits="1")


def test_an_ask_collects_up_to_the_finish_key():
    listener = Listener(ASK, speech=False, at=0.0, playing=True)
    assert listener.key("1", 1.0) == Decision(clear=True)
    assert listener.key("2", 1.5) == Decision()
    assert listener.key("#", 2.0) == Decision(event="digits", digits="12#")


def test_an_ask_ends_at_max_digits():
    listener = Listener(ASK, speech=False, at=0.0, playing=False)
    for key in "12345":
        assert listener.key(key, 1.0).event is None
    assert listener.key("6", 1.0) == Decision(event="digits", digits="123456")


def test_the_time_between_keys_is_the_timeout():
    listener = Listener(ASK, speech=False, at=0.0, playing=False)
    listener.key("1", 1.0)
    listener.key("2", 3.0)
    assert listener.tick(7.9) is NOTHING  # silence timer stopped by the keys
    assert listener.tick(8.0) == Decision(event="digits", digits="12")


def test_dtmf_only_listens_ignore_speech_and_speech_only_ignore_keys():
    keys_only = Listen("ask", frozenset({"dtmf"}), 5.0, True, max_digits=4)
    listener = Listener(keys_only, speech=True, at=0.0, playing=False)
    assert not listener.speech
    assert listener.speech_started(1.0) is NOTHING
    voice_only = Listen("ask", frozenset({"speech"}), 5.0, True)
    assert Listener(voice_only, speech=True, at=0.0, playing=False).key("1", 1.0) is NOTHING


# -- voice ---------------------------------------------------------------------------------------


def test_speaking_during_the_prompt_barges_in_then_asks_for_the_result():
    listener = Listener(MENU, speech=True, at=0.0, playing=True)
    assert listener.speech_started(2.0) == Decision(clear=True, feed=True)
    assert listener.speaking
    assert listener.tick(10.0) is NOTHING  # no timeout while the caller speaks
    assert listener.speech_ended(3.5) == Decision(recognise=True)
    assert listener.tick(100.0) is NOTHING  # nor while recognising
    assert listener.key("1", 4.0) is NOTHING  # the answer is on its way
    listener.recognised()
    assert listener.done


def test_nothing_recognised_listens_on_with_the_timer_restarted():
    listener = Listener(MENU, speech=True, at=0.0, playing=False)
    listener.speech_started(1.0)
    listener.speech_ended(2.0)
    listener.heard_nothing(2.1)
    assert not listener.done
    assert listener.tick(7.0) is NOTHING
    assert listener.tick(7.1) == Decision(event="no_input")


def test_without_barge_in_speech_during_the_prompt_is_not_heard():
    listener = Listener(NO_BARGE_IN, speech=True, at=0.0, playing=True)
    assert listener.speech_started(1.0) is NOTHING
    assert listener.speech_ended(2.0) is NOTHING
    listener.played(3.0)
    assert listener.speech_started(3.5) == Decision(feed=True)


def test_a_key_wins_over_a_voice():
    listener = Listener(ASK, speech=True, at=0.0, playing=False)
    listener.speech_started(1.0)  # a key's tone, say
    assert listener.key("1", 1.1) == Decision()
    assert not listener.speaking
    assert listener.speech_ended(1.3) is NOTHING
    assert listener.speech_started(2.0) is NOTHING  # keying: a voice starts nothing


def test_speech_lost_goes_on_with_keys_after_the_notice():
    listener = Listener(MENU, speech=True, at=0.0, playing=False)
    listener.speech_started(1.0)
    listener.speech_ended(2.0)
    listener.speech_lost(2.5)  # the recogniser raised
    listener.prompt_again()  # the notice plays
    assert not listener.speech and not listener.recognising
    assert listener.tick(60.0) is NOTHING
    listener.played(10.0)
    assert listener.speech_started(10.5) is NOTHING
    assert listener.tick(15.0) == Decision(event="no_input")


# -- what the recogniser listens for -------------------------------------------------------------


def heard(*pairs: tuple[str, float]) -> Heard:
    texts = tuple(t for t, _ in pairs)
    confidences = tuple(c for _, c in pairs)
    return Heard(texts[0], confidences[0], texts, confidences)


def test_a_menu_reads_its_exact_phrases(flow):
    session = Session("CA1", "f", flow.version, waiting="listen")
    phrases, read = understanding(flow, session, flow.nodes["main"].listen)
    assert phrases == ["예금 잔액", "잔액", "영업 시간"]
    assert read(heard(("영업 시간 잔액", 0.6), ("영업 시간", 0.4))) == ("영업 시간", 0.4)
    assert read(heard(("예금 잔액", 0.5), ("잔액", 0.3), ("영업", 0.2))) == ("예금 잔액", 0.8)
    assert read(heard(("영업 잔액 영업", 1.0))) is None


def test_a_confirmation_reads_yes_and_no(flow):
    session = Session("CA1", "f", flow.version, waiting="confirm")
    node = flow.nodes["main"]
    phrases, read = understanding(flow, session, node.confirm_listen)
    assert "네" in phrases and "아니요" in phrases
    assert read(heard(("아니오", 0.7), ("네", 0.3))) == ("아니오", 0.7)
    assert read(heard(("예금 잔액", 1.0))) is None


def test_a_digits_ask_listens_for_digit_words(flow):
    session = Session("CA1", "f", flow.version, waiting="listen")
    phrases, read = understanding(flow, session, flow.nodes["ask"].listen)
    assert phrases is not None and "삼" in phrases
    assert read(heard(("오 이", 0.5), ("오 이 삼", 0.5))) == ("오 이 삼", 0.5)
    assert read(heard(("오 이", 1.0))) is None  # too short


def test_free_speech_takes_the_best_hypothesis(flow):
    session = Session("CA1", "f", flow.version, waiting="listen")
    phrases, read = understanding(flow, session, flow.nodes["free"].listen)
    assert phrases is None
    assert read(Heard("내일 다시 걸게요", 0.7)) == ("내일 다시 걸게요", 0.7)
    assert read(Heard("", 0.0)) is None


def test_an_utterance_that_never_ends_is_recognised_at_its_cap():
    """Loud noise or a television never falls silent: the listen must not wait for ever."""
    listener = Listener(MENU, True, 0.0, False)
    assert listener.speech_started(1.0) == Decision(feed=True)
    assert listener.tick(1.0 + MAX_UTTERANCE - 0.02) is NOTHING
    assert listener.tick(1.0 + MAX_UTTERANCE) == Decision(recognise=True)
    assert listener.busy and not listener.speaking  # what was heard is being recognised
