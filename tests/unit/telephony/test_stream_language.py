"""A Media Streams call synthesises a subflow's prompts in the subflow's language."""

from __future__ import annotations

from ivr.engine import actions as act
from ivr.flow import parse_and_compile
from ivr.telephony.stream import spoken_as

FLOW = "flow: f\nlanguage: ko-KR\nvoice: ko+f3\nstart: e\nnodes:\n  e: {end: {say: 안녕}}\n"


def test_a_prompt_is_spoken_in_the_flows_voice_unless_it_carries_its_own():
    flow = parse_and_compile(FLOW, "f.yaml", {})
    parts = (act.Text("Hello."),)
    assert spoken_as(flow, act.Prompt(parts)) == ("ko-KR", "ko+f3")
    assert spoken_as(flow, act.Prompt(parts, "en-US", None)) == ("en-US", None)
    assert spoken_as(flow, act.Prompt(parts, "en-GB", "en-gb+m3")) == ("en-GB", "en-gb+m3")
    assert spoken_as(None, act.Prompt(parts)) == ("en-US", None)
