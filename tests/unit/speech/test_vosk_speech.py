"""The Vosk adapter with the real Korean model on espeak-ng audio, streamed as the Media
Streams driver does: 8 kHz mu-law decoded, fed in 20 ms chunks until the endpointer says
the caller stopped. Asserted only for phrases recognised in every run, voice and
measurement (docs/speech.md: Vosk is not bit-for-bit repeatable within a process)."""

from __future__ import annotations

import logging

import pytest

from ivr.speech.intent import NO, YES, YES_NO, Matcher, digit_phrases, pick, pick_digits
from ivr.speech.recognizer import Heard
from ivr.speech.vad import Endpointer, SpeechEnded
from ivr.speech.vosk_speech import VoskRecognizer, VoskSpeech, heard
from tests.voices import Utterance

MENU = ["예금 잔액", "내역 조회", "상담원 연결", "한번 더", "영업 시간", "카드 정지", "분실 신고"]
MENU_OPTIONS = Matcher(
    [
        ("balance", ["예금 잔액"]),
        ("history", ["내역 조회"]),
        ("agent", ["상담원 연결"]),
        ("repeat", ["한번 더"]),
        ("hours", ["영업 시간"]),
        ("block", ["카드 정지", "분실 신고"]),
    ]
)
CONFIRM = (*YES, *NO)  # what a confirmation listens for (ivr/flow/model.py)


def listen(recognizer: VoskRecognizer, said: Utterance, phrases: list[str] | None) -> Heard:
    """One listen, as the driver runs it: feed until the caller stopped, then finish."""
    recognizer.expect(phrases)
    endpointer = Endpointer()
    for chunk in said.chunks():
        recognizer.feed(chunk)
        if any(isinstance(e, SpeechEnded) for e in endpointer.feed(chunk)):
            break
    return recognizer.finish()


@pytest.fixture
def recognizer(korean_speech: VoskSpeech) -> VoskRecognizer:
    made = korean_speech.recognizer("ko-KR")
    assert made is not None
    return made


@pytest.mark.parametrize(
    ("said", "option"), [("예금 잔액", "balance"), ("내역 조회", "history"), ("영업 시간", "hours")]
)
def test_a_menu_phrase_picks_its_option(recognizer, voices, said, option):
    result = listen(recognizer, voices.say(said), MENU)
    picked = pick(result.alternatives, result.confidences, MENU_OPTIONS)
    assert picked is not None
    assert (picked.text, picked.value) == (said, option)
    assert 0 < picked.confidence <= 1


@pytest.mark.parametrize(("said", "answer"), [("네", "yes"), ("예", "yes"), ("아니요", "no")])
def test_yes_and_no(recognizer, voices, said, answer):
    result = listen(recognizer, voices.say(said), list(CONFIRM))
    picked = pick(result.alternatives, result.confidences, YES_NO)
    assert picked is not None and picked.value == answer


@pytest.mark.parametrize("phrases", [MENU, list(CONFIRM)], ids=["menu", "yes/no"])
def test_out_of_grammar_speech_picks_nothing(recognizer, voices, phrases):
    result = listen(recognizer, voices.say("오늘 날씨가 정말 좋네요"), phrases)
    # the grammar makes words of it all the same: only they are not one whole phrase
    assert result.text
    matcher = YES_NO if phrases is not MENU else MENU_OPTIONS
    assert pick(result.alternatives, result.confidences, matcher) is None


def test_a_cough_is_heard_as_nothing(recognizer, voices):
    result = listen(recognizer, voices.noise_burst(), MENU)
    assert pick(result.alternatives, result.confidences, MENU_OPTIONS) is None


def test_line_noise_is_heard_as_nothing(recognizer, voices):
    assert listen(recognizer, voices.silence(1.5), MENU) == Heard("", 0.0)


@pytest.mark.parametrize(("said", "digits"), [("이", "2"), ("오", "5")])
def test_a_spoken_digit(recognizer, voices, said, digits):
    result = listen(recognizer, voices.say(said), list(digit_phrases("ko-KR")))
    picked = pick_digits(result.alternatives, result.confidences, 1, 1)
    assert picked is not None and picked.value == digits


def test_one_recogniser_changes_grammar_between_utterances(recognizer, voices):
    # Reset() then SetGrammar() on an idle recogniser: menu, yes/no, menu again
    assert listen(recognizer, voices.say("영업 시간"), MENU).text == "영업 시간"
    assert listen(recognizer, voices.say("네"), list(CONFIRM)).text == "네"
    assert listen(recognizer, voices.say("예금 잔액"), MENU).text == "예금 잔액"


def test_free_speech(recognizer, voices):
    # espeak's Korean is not recognisable free (docs/speech.md): only the shape is checked
    result = listen(recognizer, voices.say("예금 잔액"), None)
    assert result.text and result.text == result.alternatives[0]
    assert len(result.alternatives) == len(result.confidences) >= 1
    assert 0 < sum(result.confidences) <= 1.0001
    assert list(result.confidences) == sorted(result.confidences, reverse=True)


def test_grammar_leaves_out_phrases_with_unknown_words(korean_speech, caplog):
    model = korean_speech.model("ko-KR")
    with caplog.at_level(logging.WARNING, logger="ivr.speech"):
        grammar = model.grammar(["카드정지 해제", "영업 시간", "Yes!"])
        again = model.grammar(["카드정지 해제", "예금 잔액"])
    # "카드정지" is not a word of the model: Vosk would keep "해제" alone, a phrase nobody said
    assert grammar == ["영업 시간"]
    assert again == ["예금 잔액"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # each unknown word once, with the phrase it is in
    assert "'카드정지' (in '카드정지 해제')" in warnings[0]
    assert "'yes' (in 'Yes!')" in warnings[0] or "'Yes' (in 'Yes!')" in warnings[0]


def test_one_word_grammars_get_hesitations(korean_speech):
    model = korean_speech.model("ko-KR")
    assert model.grammar(["네", "아니요"]) == ["네", "아니요", "음", "어"]
    assert model.grammar(MENU) == MENU  # longer phrases: none (and no [unk] in this model)


def test_feed_before_expect_is_a_mistake(korean_speech):
    with pytest.raises(RuntimeError):
        VoskRecognizer(korean_speech.model("ko")).feed(b"\x00" * 320)


@pytest.mark.parametrize("language", ["ko-KR", "ko", "KO-kr", "ko-KP"])
def test_models_by_language(korean_speech, language):
    assert korean_speech.model(language) is korean_speech.model("ko-KR")


def test_no_model_for_a_language(korean_speech):
    assert korean_speech.languages() == ["ko-KR"]
    assert korean_speech.model("en-US") is None
    assert korean_speech.recognizer("en-US") is None


def test_models_are_loaded_once(korean_speech):
    model = korean_speech.model("ko-KR")
    assert model.loaded and model.load() is model.load()


def test_heard_turns_scores_into_confidences():
    result = heard(
        [
            {
                "alternatives": [
                    {"text": "네", "confidence": 101.0},
                    {"text": "예", "confidence": 100.0},
                ]
            }
        ]
    )
    assert result.alternatives == ("네", "예")
    assert result.confidences == pytest.approx((0.7311, 0.2689), abs=1e-4)
    assert (result.text, result.confidence) == ("네", result.confidences[0])


def test_heard_merges_the_same_text_and_gives_silence_its_share():
    result = heard(
        [
            {
                "alternatives": [
                    {"text": "", "confidence": 50.0},
                    {"text": "네", "confidence": 50.0},
                    {"text": "네", "confidence": 50.0},
                ]
            }
        ]
    )
    assert result.alternatives == ("네",)
    assert result.confidences == pytest.approx((2 / 3,), abs=1e-4)


def test_heard_joins_segments_vosk_cut():
    first = {"alternatives": [{"text": "상담원", "confidence": 90.0}]}
    last = {
        "alternatives": [
            {"text": "", "confidence": 10.0},
            {"text": "연결", "confidence": 10.0},
            {"text": "예", "confidence": 8.0},
        ]
    }
    result = heard([first, {"alternatives": [{"text": "", "confidence": 3.0}]}, last])
    assert result.alternatives[:2] in (("상담원", "상담원 연결"), ("상담원 연결", "상담원"))
    assert set(result.alternatives) == {"상담원", "상담원 연결", "상담원 예"}


@pytest.mark.parametrize(
    "segments",
    [
        [],
        [{"text": ""}],
        [{"alternatives": []}],
        [{"alternatives": [{"text": "", "confidence": 1}]}],
    ],
)
def test_heard_nothing(segments):
    assert heard(segments) == Heard("", 0.0)


def test_heard_without_alternatives():
    assert heard([{"text": "영업 시간"}]) == Heard("영업 시간", 1.0, ("영업 시간",), (1.0,))
