"""Understanding a transcript: normalise it, then match it to the phrases a menu expects.

Pure (no audio, no model): the engine uses it for Twilio's transcripts and for Vosk's.
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
_PUNCT = re.compile(r"[^\w\s']|_", re.UNICODE)

YES = (
    "yes",
    "yeah",
    "yep",
    "correct",
    "right",
    "that's right",
    "sure",
    "yes please",
    "affirmative",
)
NO = ("no", "nope", "wrong", "not really", "no thanks", "incorrect", "negative")


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces, number words as digits ("One!" -> "1")."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    words = _PUNCT.sub(" ", text).split()
    return " ".join(_DIGIT_WORDS.get(w, w) for w in words)


def spoken_digits(text: str) -> str | None:
    """Digits said or typed: "one two 3 four" -> "1234"; None if anything else is said."""
    words = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split()
    out = []
    for word in words:
        if word.isdigit() and word.isascii():
            out.append(word)
        elif word in _NUMBERS:
            out.append(_NUMBERS[word])
        else:
            return None
    return "".join(out) or None


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
