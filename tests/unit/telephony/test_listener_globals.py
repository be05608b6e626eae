"""A stream call's listen at an ask with global options: a global key ends the entry at
once, and the recogniser listens for the globals' phrases beside the digits."""

from __future__ import annotations

from ivr.engine.session import Session
from ivr.flow import parse_and_compile
from ivr.speech.recognizer import Heard
from ivr.telephony.listener import Decision, Listener, understanding

FLOW = """
flow: f
language: ko-KR
speech: vosk
start: ask
global:
  agent: {dtmf: "0", speech: [상담원 연결], goto: bye}
  repeat: {dtmf: "*", speech: [한번 더], repeat: true}
nodes:
  ask:
    ask: {prompt: "번호", digits: {min: 4, max: 4, finish_on: "#"}, save_as: pin, sensitive: true}
    next: bye
  bye:
    end: {say: "안녕히 계세요"}
"""


def test_a_global_key_ends_the_entry_at_once():
    listen = parse_and_compile(FLOW, "f.yaml", {}).nodes["ask"].listen
    assert listen.global_keys == "*"
    listener = Listener(listen, True, 0.0, playing=False)
    assert listener.key("1", 0.1) == Decision()
    assert listener.key("*", 0.2) == Decision(event="digits", digits="1*")
    listener = Listener(listen, True, 0.0, playing=False)
    assert listener.key("0", 0.1) == Decision()  # a digit of the entry here


def test_the_recogniser_hears_digits_and_the_globals_phrases_said_whole():
    flow = parse_and_compile(FLOW, "f.yaml", {})
    listen = flow.nodes["ask"].listen
    session = Session(call_id="c", flow_id="f", version=flow.version, node="ask")
    phrases, read = understanding(flow, session, listen)
    assert phrases is not None and {"상담원 연결", "한번 더", "일", "공"} <= set(phrases)
    assert read(Heard("상담원 연결", 0.8, ("상담원 연결",), (0.8,))) == ("상담원 연결", 0.8)
    assert read(Heard("일 이 삼 사", 0.7, ("일 이 삼 사",), (0.7,))) == ("일 이 삼 사", 0.7)
    assert read(Heard("상담원 연결 일", 0.7, ("상담원 연결 일",), (0.7,))) is None
