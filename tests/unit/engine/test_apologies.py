"""The apologies ivr says itself, in the call's language."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from ivr.engine import actions as act
from ivr.engine.apologies import SAID, apology
from ivr.engine.engine import APOLOGY, apology_of
from ivr.flow.model import Flow, Text

FLOW = Flow(id="f", version="1", file="f.yaml", start="a", nodes=MappingProxyType({}))


def text(prompt: act.Prompt) -> str:
    (part,) = prompt.parts
    assert isinstance(part, Text)
    return part.text


@pytest.mark.parametrize("kind", sorted(SAID))
def test_every_apology_in_every_language(kind: str) -> None:
    assert set(SAID[kind]) == {"en", "ru", "kk", "ko"}


@pytest.mark.parametrize(
    ("language", "starts"),
    [("en-US", "Sorry"), ("ru-RU", "Извините"), ("kk-KZ", "Кешіріңіз"), ("ko", "죄송합니다")],
)
def test_by_the_primary_language(language: str, starts: str) -> None:
    assert text(apology("lost_call", language)).startswith(starts)


def test_a_language_without_apologies_hears_english() -> None:
    assert apology("failed", "sw-KE") == apology("failed") == APOLOGY


def test_a_flow_without_an_apology_fails_in_its_language() -> None:
    assert apology_of(None) == APOLOGY
    assert apology_of(FLOW) == APOLOGY
    korean = replace(FLOW, language="ko-KR")
    assert apology_of(korean) == apology("failed", "ko-KR") != APOLOGY
    own = replace(korean, apology=(Text("미안합니다."),))
    assert apology_of(own) == act.Prompt((Text("미안합니다."),))
