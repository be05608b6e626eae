"""Inline SSML: parsed into a checked tree, its words kept for screens and local TTS."""

from __future__ import annotations

import pytest

from ivr.flow.ssml import SsmlError, Tag, has_markup, parse, plain


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("plain words", ("plain words",)),
        ('Hi <break time="500ms"/> there', ("Hi ", Tag("break", (("time", "500ms"),)), " there")),
        ("<break strength='strong'></break>", (Tag("break", (("strength", "strong"),)),)),
        (
            'Code <say-as interpret-as="digits">1234</say-as>.',
            ("Code ", Tag("say-as", (("interpret-as", "digits"),), ("1234",)), "."),
        ),
        (
            '<prosody rate="slow" volume="+6dB">'
            'Say <emphasis level="strong">this</emphasis></prosody>',
            (
                Tag(
                    "prosody",
                    (("rate", "slow"), ("volume", "+6dB")),
                    ("Say ", Tag("emphasis", (("level", "strong"),), ("this",))),
                ),
            ),
        ),
        # entities as SSML writes them are decoded; a bare & stays text
        ("AT&amp;T and AT&T", ("AT&T and AT&T",)),
        # templates are left whole, a < inside one is no tag
        ("<emphasis>{{ a < b }}</emphasis>", (Tag("emphasis", (), ("{{ a < b }}",)),)),
        ("1 < 2 and 3 > 2", ("1 < 2 and 3 > 2",)),
    ],
)
def test_parse(text: str, tree: tuple[object, ...]) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<speak>hi</speak>", "unknown tag <speak>"),
        ("<audio src='x'/>", "unknown tag <audio>"),
        ('<break time="long"/>', "<break time='long'>: expected"),
        ('<break pause="1s"/>', "<break> has no attribute 'pause'"),
        ("<emphasis>open", "<emphasis> is not closed"),
        ("close</prosody>", "</prosody> closes nothing"),
        ("<emphasis>a</prosody>", "</prosody> closes nothing: <emphasis> is open"),
        ("<say-as interpret-as='digits'><emphasis>1</emphasis></say-as>", "holds text only"),
        ('<prosody rate="{{ r }}">x</prosody>', "cannot be templated"),
        ("<break time=5s/>", "malformed tag"),
    ],
)
def test_bad_markup_is_an_error(text: str, message: str) -> None:
    with pytest.raises(SsmlError, match=None) as e:
        parse(text)
    assert message in str(e.value)


def test_plain_is_the_words_alone() -> None:
    tree = parse('Hello <break time="1s"/>  <emphasis>you</emphasis>, <say-as>42</say-as>')
    assert plain(tree) == "Hello you, 42"


@pytest.mark.parametrize(
    ("text", "markup"),
    [("a <break/>", True), ("1 < 2", False), ("{{ '<b>' }}", False), ("</x>", True)],
)
def test_has_markup(text: str, markup: bool) -> None:
    assert has_markup(text) is markup
