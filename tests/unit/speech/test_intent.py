"""Intent matching: normalising transcripts and matching them to a menu's phrases."""

from __future__ import annotations

import pytest

from ivr.speech.intent import NO, YES, YES_NO, Match, Matcher, normalize, spoken_digits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Balance!", "balance"),
        ("  Block   my\tCARD. ", "block my card"),
        ("One!", "1"),
        ("zero oh seven", "0 0 7"),
        ("that’s right", "that's right"),
        ("snake_case-words", "snake case words"),
        ("Straße", "strasse"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_normalize_keeps_homophones_of_digits_as_words():
    # "to", "too" and "for" are words in a phrase ("talk to an agent"); only spoken_digits
    # reads them as digits
    assert normalize("talk to an agent for me") == "talk to an agent for me"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one two three four five six seven four", "12345674"),
        ("one two 3 four", "1234"),
        ("1234", "1234"),
        ("12 34", "1234"),
        ("Oh, eight. Nine!", "089"),
        ("for two too", "422"),
        ("１２", "12"),
        ("one banana", None),
        ("eleven", None),
        ("", None),
        ("...", None),
    ],
)
def test_spoken_digits(text, expected):
    assert spoken_digits(text) == expected


@pytest.fixture
def matcher() -> Matcher:
    return Matcher(
        [
            ("balance", ["balance", "account balance", "how much money"]),
            ("block", ["block card", "block my card", "card"]),
            ("agent", ["agent", "operator"]),
        ]
    )


def test_exact(matcher):
    assert matcher.match("Balance!") == Match("balance", "balance", 1.0, "exact")
    assert matcher.match("  OPERATOR ") == Match("agent", "operator", 1.0, "exact")


def test_contained(matcher):
    assert matcher.match("I'd like my account balance please") == Match(
        "balance", "account balance", 0.9, "contained"
    )


def test_contained_longest_phrase_wins(matcher):
    assert matcher.match("please block my card now") == Match(
        "block", "block my card", 0.9, "contained"
    )
    # "balance" is longer than "card": the longer phrase decides between options too
    assert matcher.match("what is the balance on my card") == Match(
        "balance", "balance", 0.9, "contained"
    )


def test_contained_matches_whole_words_only(matcher):
    assert matcher.match("cardigan") is None


def test_fuzzy(matcher):
    match = matcher.match("balanse")
    assert match is not None
    assert (match.option, match.phrase, match.how) == ("balance", "balance", "fuzzy")
    assert 0 < match.score < 0.8


def test_none(matcher):
    assert matcher.match("pizza") is None
    assert matcher.match("") is None
    assert matcher.match("!!!") is None


def test_threshold():
    strict = Matcher([("balance", ["balance"])], threshold=99)
    assert strict.match("balanse") is None


def test_first_option_keeps_a_shared_phrase():
    m = Matcher([("a", ["same"]), ("b", ["Same!", "other"])])
    assert m.match("same").option == "a"
    assert m.phrases == ["same", "other"]


def test_phrases_are_the_originals(matcher):
    assert matcher.phrases == [
        "balance",
        "account balance",
        "how much money",
        "block card",
        "block my card",
        "card",
        "agent",
        "operator",
    ]


@pytest.mark.parametrize("word", YES)
def test_yes(word):
    assert YES_NO.match(word).option == "yes"


@pytest.mark.parametrize("word", NO)
def test_no(word):
    assert YES_NO.match(word).option == "no"


def test_yes_no_in_a_sentence_and_neither():
    assert YES_NO.match("yes that's right").option == "yes"
    assert YES_NO.match("maybe later") is None
