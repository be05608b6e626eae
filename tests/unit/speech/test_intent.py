"""Intent matching: normalising transcripts and matching them to a menu's phrases."""

from __future__ import annotations

import pytest

from ivr.speech.intent import (
    NO,
    YES,
    YES_NO,
    Match,
    Matcher,
    Pick,
    digit_phrases,
    normalize,
    pick,
    pick_digits,
    spoken_digits,
    yes_no_phrases,
)


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
        ("공 일 이 삼 사 오", "012345"),
        ("영 육 칠 팔 구", "06789"),
        ("공일이삼", "0123"),
        ("삼, 오. 이!", "352"),
        ("one 이 3", "123"),
        ("이 번호", None),
        ("일본", None),
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


def test_korean_digit_words_leave_menus_alone():
    # "이" is "two" only where digits are asked for; in a menu phrase it stays a word
    assert normalize("이 카드 정지") == "이 카드 정지"
    assert Matcher([("two", ["이"])]).match("2") is None


@pytest.mark.parametrize(
    ("language", "first"), [("ko-KR", "영"), ("ko", "영"), ("en-US", "zero"), ("fr-FR", "zero")]
)
def test_digit_phrases_by_language(language, first):
    phrases = digit_phrases(language)
    assert phrases[0] == first
    assert all(spoken_digits(p) is not None for p in phrases)


@pytest.mark.parametrize("word", ["네", "예", "맞아요", "그래요"])
def test_korean_yes(word):
    assert YES_NO.exact(word).option == "yes"


@pytest.mark.parametrize("word", ["아니요", "아니오", "아니", "아닙니다"])
def test_korean_no(word):
    assert YES_NO.exact(word).option == "no"


def test_exact_is_the_whole_utterance_only(matcher):
    assert matcher.exact(" Balance! ") == Match("balance", "balance", 1.0, "exact")
    assert matcher.exact("my account balance please") is None  # match() finds it contained
    assert matcher.exact("balanse") is None  # and this fuzzily
    assert matcher.exact("") is None


MENU = Matcher(
    [
        ("balance", ["예금 잔액", "잔액"]),
        ("history", ["내역 조회"]),
        ("hours", ["영업 시간"]),
    ]
)


@pytest.mark.parametrize(
    ("alternatives", "confidences", "expected"),
    [
        # the first alternative that is one whole phrase, with its option's confidence
        (["예금 잔액"], [1.0], Pick("예금 잔액", "balance", 1.0)),
        (["영업 시간 영업", "영업 시간"], [0.6, 0.4], Pick("영업 시간", "hours", 0.4)),
        # alternatives meaning the same option add up
        (["예금 잔액", "내역", "잔액"], [0.5, 0.2, 0.3], Pick("예금 잔액", "balance", 0.8)),
        # recombinations of grammar words name options but are none of them: nothing
        (["영업 시간 영업 내역", "카드 한번 시간 영업 내역"], [0.7, 0.3], None),
        (["내역 조회 더"], [1.0], None),
        ([], [], None),
    ],
)
def test_pick(alternatives, confidences, expected):
    assert pick(alternatives, confidences, MENU) == expected


def test_pick_yes_no():
    assert pick(["아니요", "아니오"], [0.55, 0.45], YES_NO) == Pick("아니요", "no", 1.0)
    assert pick(["네 예"], [0.3], YES_NO) is None


def test_pick_needs_a_confidence_for_each_alternative():
    with pytest.raises(ValueError):
        pick(["예금 잔액", "잔액"], [1.0], MENU)


@pytest.mark.parametrize(
    ("alternatives", "expected"),
    [
        (["오 이 삼"], Pick("오 이 삼", "523", 1.0)),
        (["오 이", "오 이 삼"], Pick("오 이 삼", "523", 0.5)),  # too short, then right
        (["오 이 구 삼", "오 이 삼"], Pick("오 이 삼", "523", 0.5)),  # too long
        (["내역", "오 영업"], None),
    ],
)
def test_pick_digits(alternatives, expected):
    confidences = [1.0 / len(alternatives)] * len(alternatives)
    assert pick_digits(alternatives, confidences, 3, 3) == expected


@pytest.mark.parametrize(
    ("said", "digits"),
    [
        ("один два три", "123"),
        ("ноль девять, восемь", "098"),
        ("Бір екі үш", "123"),
        ("нөл тоғыз сегіз", "098"),
        ("일 이 삼", "123"),
        ("하나 둘 셋", "123"),
        ("one два үш 4", "1234"),  # words of several languages in one answer
        ("один банан", None),
    ],
)
def test_spoken_digits_in_every_language(said: str, digits: str | None) -> None:
    assert spoken_digits(said) == digits


@pytest.mark.parametrize(
    ("said", "answer"),
    [("да", "yes"), ("нет", "no"), ("иә", "yes"), ("жоқ", "no"), ("네", "yes"), ("아니요", "no")],
)
def test_yes_and_no_in_every_language(said: str, answer: str) -> None:
    match = YES_NO.match(said)
    assert match is not None and match.option == answer


def test_a_recogniser_hears_the_call_language_words() -> None:
    assert digit_phrases("kk-KZ")[:3] == ("нөл", "бір", "екі")
    assert "один" in digit_phrases("ru-RU")
    assert yes_no_phrases("ru-RU")[0] == "да" and "жоқ" in yes_no_phrases("kk-KZ")
    assert yes_no_phrases("xx-XX") == yes_no_phrases("en-US")
