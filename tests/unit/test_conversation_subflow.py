"""`ivr test` on a flow with a subflow: the calling flow's globals and on_fail reach into it."""

from __future__ import annotations

from pathlib import Path

from ivr.conversation import run_suite

MAIN = """flow: main
start: auth
defaults: {retries: 1, on_fail: agent}
global:
  agent: {dtmf: "0", speech: [agent, operator], goto: agent}
  help: {speech: [help], help: true}
nodes:
  auth:
    subflow: {flow: pin, next: bye}
  agent:
    transfer: {to: "+15550199", say: "Connecting you to an agent."}
  bye:
    end: {say: "Goodbye."}
"""
PIN = """flow: pin
language: ko-KR
start: ask_pin
nodes:
  ask_pin:
    ask:
      prompt: "비밀번호 네 자리를 눌러 주세요."
      help: "카드 뒷면의 네 자리입니다."
      input: any
      digits: {min: 4, max: 4}
      validate: "value == '1234'"
      save_as: pin
    next: done
  done:
    end: {say: "감사합니다."}
"""
TESTS = """flow: main.yaml
tests:
  - name: operator said in the subflow is the calling flow's zero-out
    steps:
      - expect: {heard: 비밀번호 네 자리, node: auth.ask_pin}
      - say: help
      - expect: {heard: 카드 뒷면의 네 자리입니다, node: auth.ask_pin}
      - say: operator
      - expect: {outcome: transferred, transfer: {reason: "global:agent"}}
  - name: wrong PINs go to the calling flow's on_fail
    steps:
      - press: "9999"
      - press: "8888"
      - expect: {heard: Connecting you to an agent, transfer: {reason: "on_fail:auth.ask_pin"}}
  - name: the right PIN returns to the calling flow
    steps:
      - press: "1234"
      - expect: {heard: [감사합니다, Goodbye], outcome: contained}
"""


def test_a_subflow_inherits_globals_and_on_fail_in_conversation_tests(tmp_path: Path) -> None:
    for name, text in {"main": MAIN, "pin": PIN, "tests": TESTS}.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    suite = run_suite(tmp_path / "tests.yaml")
    assert suite.passed, suite.report()
    assert [r.outcome for r in suite.results] == ["transferred", "transferred", "contained"]
