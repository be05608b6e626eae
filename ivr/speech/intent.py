"""Understanding a transcript: normalise it, then match it to the phrases a menu expects.

Pure (no audio, no model): the engine uses it for Twilio's transcripts and for Vosk's.
`pick` and `pick_digits` read a recogniser's N-best list the strict way a grammar needs
(the first alternative that is exactly one phrase), docs/speech.md says why.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

_NUMBERS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "to": "2",
    "too": "2",
    "three": "3",
    "four": "4",
    "for": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_DIGIT_WORDS = {k: v for k, v in _NUMBERS.items() if k not in ("to", "too", "for", "o")}
# Sino-Korean digits, as callers read out numbers; for spoken_digits only: in a menu
# phrase they are words ("이" is also "this", "일" also "work")
_KOREAN_DIGITS = {
    "영": "0",
    "공": "0",
    "일": "1",
    "이": "2",
    "삼": "3",
    "사": "4",
    "오": "5",
    "육": "6",
    "칠": "7",
    "팔": "8",
    "구": "9",
}
# digits as words in the other languages flows serve; for spoken_digits (an ask), which
# takes every language's at once: a caller who answers in Russian in an English call is
# understood, and no word means one digit in one language and another in another
_WORD_DIGITS = {
    "ru": {"ноль": "0", "нуль": "0", "один": "1", "одна": "1", "два": "2", "две": "2",
           "три": "3", "четыре": "4", "пять": "5", "шесть": "6", "семь": "7", "восемь": "8",
           "девять": "9"},
    "kk": {"нөл": "0", "бір": "1", "екі": "2", "үш": "3", "төрт": "4", "бес": "5",
           "алты": "6", "жеті": "7", "сегіз": "8", "тоғыз": "9"},
    # native Korean numerals (하나 둘 셋), as some callers count; not 한/두/세/네, which are
    # also other words ("네" is yes)
    "ko": {"하나": "1", "둘": "2", "셋": "3", "넷": "4", "다섯": "5", "여섯": "6",
           "일곱": "7", "여덟": "8", "아홉": "9"},
}  # fmt: skip
_SPOKEN_DIGITS = {**_NUMBERS, **_KOREAN_DIGITS}
for _words in _WORD_DIGITS.values():
    _SPOKEN_DIGITS.update(_words)
# what a recogniser listens for when digits are asked for, by language (primary subtag)
DIGIT_PHRASES = {
    "en": ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "ko": (*_KOREAN_DIGITS, *_WORD_DIGITS["ko"]),
    "ru": tuple(_WORD_DIGITS["ru"]),
    "kk": tuple(_WORD_DIGITS["kk"]),
}
_PUNCT = re.compile(r"[^\w\s']|_", re.UNICODE)

# yes and no, by language (primary subtag): a confirmation hears every language's, a
# recogniser is told the call's
YES_BY_LANGUAGE = {
    "en": ("yes", "yeah", "yep", "correct", "right", "that's right", "sure", "yes please",
           "affirmative"),
    "ko": ("네", "예", "네 맞아요", "맞아요", "맞습니다", "그래요"),  # 예 and 네 both mean yes
    "ru": ("да", "ага", "верно", "правильно", "да верно", "конечно", "да пожалуйста"),
    "kk": ("иә", "ия", "йә", "дұрыс", "әрине", "иә дұрыс"),
}  # fmt: skip
NO_BY_LANGUAGE = {
    "en": ("no", "nope", "wrong", "not really", "no thanks", "incorrect", "negative"),
    "ko": ("아니요", "아니오", "아니", "아니에요", "아닙니다", "틀려요"),
    "ru": ("нет", "неверно", "неправильно", "не правильно", "нет спасибо"),
    "kk": ("жоқ", "дұрыс емес", "қате", "жоқ рахмет"),
}  # fmt: skip
YES = tuple(word for words in YES_BY_LANGUAGE.values() for word in words)
NO = tuple(word for words in NO_BY_LANGUAGE.values() for word in words)


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces, number words as digits ("One!" -> "1")."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    words = _PUNCT.sub(" ", text).split()
    return " ".join(_DIGIT_WORDS.get(w, w) for w in words)


def spoken_digits(text: str) -> str | None:
    """Digits said or typed: "one two 3 four" -> "1234", "공 일 이 삼" or "공일이삼" -> "0123";
    None if anything else is said."""
    words = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()
    out = []
    for word in words:
        if word.isdigit() and word.isascii():
            out.append(word)
        elif word in _SPOKEN_DIGITS:
            out.append(_SPOKEN_DIGITS[word])
        elif all(syllable in _KOREAN_DIGITS for syllable in word):
            out.extend(_KOREAN_DIGITS[syllable] for syllable in word)  # written without spaces
        else:
            return None
    return "".join(out) or None


def digit_phrases(language: str) -> tuple[str, ...]:
    """The words a recogniser should listen for when a flow in `language` asks for digits
    (English's when the language has none here)."""
    return DIGIT_PHRASES.get(language.split("-")[0].lower(), DIGIT_PHRASES["en"])


def yes_no_phrases(language: str) -> tuple[str, ...]:
    """Yes and no in `language`, for a recogniser (English's when it has none here)."""
    primary = language.split("-")[0].lower()
    if primary not in YES_BY_LANGUAGE:
        primary = "en"
    return (*YES_BY_LANGUAGE[primary], *NO_BY_LANGUAGE[primary])


@dataclass(frozen=True, slots=True)
class Match:
    option: str
    phrase: str
    score: float  # 1.0 exact, 0.9 contained, below: fuzzy
    how: str  # exact | contained | fuzzy


class Matcher:
    """Matches an utterance to one of several options, each with phrases.

    Exact match first, then a phrase contained in the utterance (the longest wins),
    then fuzzy matching with rapidfuzz above `threshold` (0-100).
    """

    def __init__(self, options: Iterable[tuple[str, Sequence[str]]], threshold: float = 80) -> None:
        self.threshold = threshold
        self._phrases: list[str] = []
        self._owner: list[str] = []
        self._exact: dict[str, tuple[str, str]] = {}
        for name, phrases in options:
            for phrase in phrases:
                norm = normalize(phrase)
                if norm and norm not in self._exact:
                    self._exact[norm] = (name, phrase)
                    self._phrases.append(norm)
                    self._owner.append(name)
        # longest first, so "block my card" wins over "card" when both are said
        self._by_length = sorted(range(len(self._phrases)), key=lambda i: -len(self._phrases[i]))

    @property
    def phrases(self) -> list[str]:
        return [phrase for _, phrase in self._exact.values()]

    def exact(self, utterance: str) -> Match | None:
        """The option whose phrase the utterance is, whole (after normalising); else None."""
        found = self._exact.get(normalize(utterance))
        return Match(found[0], found[1], 1.0, "exact") if found else None

    def match(self, utterance: str) -> Match | None:
        said = normalize(utterance)
        if not said:
            return None
        if said in self._exact:
            name, phrase = self._exact[said]
            return Match(name, phrase, 1.0, "exact")
        padded = f" {said} "
        for i in self._by_length:
            if f" {self._phrases[i]} " in padded:
                return Match(self._owner[i], self._exact[self._phrases[i]][1], 0.9, "contained")
        best = process.extractOne(
            said, self._phrases, scorer=fuzz.token_set_ratio, score_cutoff=self.threshold
        )
        if best is None:
            return None
        _, score, i = best
        return Match(self._owner[i], self._exact[self._phrases[i]][1], 0.8 * score / 100, "fuzzy")


YES_NO = Matcher([("yes", YES), ("no", NO)], threshold=90)


@dataclass(frozen=True, slots=True)
class Pick:
    """What a recogniser's N-best list was understood as: the alternative taken (`text`),
    what it means (an option's name, "yes"/"no", or the digits) and the confidence, the
    summed confidence of every alternative that means the same."""

    text: str
    value: str
    confidence: float


def pick(
    alternatives: Sequence[str], confidences: Sequence[float], matcher: Matcher
) -> Pick | None:
    """The first alternative that is exactly one of `matcher`'s phrases, or None.

    Exactly, not contained or fuzzy: a grammar makes the recogniser answer with grammar
    words whatever was said, so out-of-grammar speech comes back as fragments and
    recombinations of the phrases ("영업 시간 영업 내역"); naming an option is no evidence,
    being one whole phrase is (docs/speech.md, bench/grammar.py: of 65 such utterances
    the lax way took 40, this one 8). `confidences` are the alternatives' (0-1), in the same order.
    """
    matches = [matcher.exact(text) for text in alternatives]
    meanings = [m.option if m else None for m in matches]
    return _first(alternatives, confidences, meanings)


def pick_digits(
    alternatives: Sequence[str], confidences: Sequence[float], min_digits: int, max_digits: int
) -> Pick | None:
    """The first alternative that is only digits, `min_digits` to `max_digits` of them."""
    values = [spoken_digits(text) for text in alternatives]
    meanings = [v if v and min_digits <= len(v) <= max_digits else None for v in values]
    return _first(alternatives, confidences, meanings)


def _first(
    alternatives: Sequence[str], confidences: Sequence[float], meanings: Sequence[str | None]
) -> Pick | None:
    taken = next((i for i, meaning in enumerate(meanings) if meaning is not None), None)
    if taken is None:
        return None
    value = meanings[taken]
    assert value is not None
    total = sum(c for m, c in zip(meanings, confidences, strict=True) if m == value)
    return Pick(alternatives[taken], value, min(1.0, total))
