"""`ivr prompts FLOW`: a flow's prompts, which have recordings, and TTS placeholders for the rest.

A designer sees every distinct prompt with the nodes that say it: a recording that
is there, one the flow names but audio/ lacks, text the TTS speaks, or a template
rendered on the turn. `--synthesise DIR` writes each static text as an 8 kHz mono
WAV named after where it is said (`main.prompt.wav`), to be replaced by a real
recording and named in the flow as `{audio: main.prompt.wav}`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.flow.model import Flow, Part
    from ivr.speech.tts import TTS


@dataclass
class Row:
    """One distinct prompt part: `kind` recording, missing, text or template."""

    kind: str
    role: str
    what: str  # the file or the text
    nodes: list[str] = field(default_factory=list)
    name: str = ""  # the placeholder's file name
    language: str = ""  # the language it is said in (a flow's `languages`)


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers `ivr prompts` (imports nothing heavy: the CLI loads this on every run)."""
    p = sub.add_parser(
        "prompts",
        help="list a flow's prompts, with and without recordings; synthesise placeholders",
    )
    p.add_argument("flow", type=Path)
    p.add_argument("--audio", type=Path, help="where recordings are (IVR_AUDIO, default audio)")
    p.add_argument(
        "--synthesise",
        type=Path,
        metavar="DIR",
        help="write a TTS placeholder (8 kHz mono WAV) for each text prompt into DIR",
    )
    p.add_argument("--force", action="store_true", help="overwrite placeholders in DIR")
    p.set_defaults(run=run)


def rows(flow: Flow, audio_dir: Path) -> list[Row]:
    """The flow's distinct prompt parts in flow order, each with the nodes that say it."""
    from ivr.flow.model import Audio
    from ivr.flow.templates import is_template

    found: dict[tuple[str, str, str, str], Row] = {}
    for node, role, index, part, language in _parts(flow):
        if isinstance(part, Audio):
            kind = "recording" if (audio_dir / part.file).is_file() else "missing"
            what = part.file
        else:  # inline SSML: its words (part.text), the tags are for Twilio's voice
            kind, what = ("template" if is_template(part.text) else "text"), part.text
        row = found.setdefault(
            (kind, role, what, language), Row(kind, role, what, [], "", language)
        )
        if not row.nodes:
            tag = "" if language == flow.language else f".{language}"
            row.name = f"{node}.{role}{'' if index is None else f'.{index + 1}'}{tag}.wav"
        row.nodes.append(node)
    return list(found.values())


def _parts(flow: Flow) -> list[tuple[str, str, int | None, Part, str]]:
    """(node, role, index among the prompt's parts, part, language) in flow order."""
    from ivr.flow.model import Audio

    own = flow.language
    out: list[tuple[str, str, int | None, Part, str]] = []
    for node in flow.nodes.values():
        for role, prompt in node.prompts():
            for language, said in ((own, prompt), *prompt.languages):
                many = len(said.source) > 1
                out += [
                    (node.name, role, i if many else None, p, language)
                    for i, p in enumerate(said.source)
                ]
    for role, parts in (("apology", flow.apology), ("speech_down", flow.speech_down)):
        for language, words in ((own, parts), *flow.said_in.get(role, {}).items()):
            many = words is not None and len(words) > 1
            out += [
                ("defaults", role, i if many else None, p, language)
                for i, p in enumerate(words or ())
            ]
    if flow.hold_music:
        out.append(("defaults", "hold_music", None, Audio(flow.hold_music), own))
    return out


def synthesise(row: Row, language: str, voice: str | None, tts: TTS) -> bytes:
    """The placeholder WAV of a text row."""
    from ivr.speech.prompts import resample, wav_bytes

    return wav_bytes(resample(tts.synthesise(row.what, language, voice)))


def run(args: argparse.Namespace) -> int:
    from ivr.config import Config
    from ivr.flow import load_flow
    from ivr.speech.tts import TTSError, from_setting

    config = Config.from_env()
    flow = load_flow(args.flow)
    table = rows(flow, args.audio or config.audio)
    _print(table, several=len(flow.languages) > 1)
    status = 1 if any(r.kind == "missing" for r in table) else 0
    if args.synthesise is None:
        return status
    tts = from_setting(config.tts)
    args.synthesise.mkdir(parents=True, exist_ok=True)
    for row in (r for r in table if r.kind == "text"):
        path = args.synthesise / row.name
        if path.exists() and not args.force:
            print(f"kept {path} (there already; --force replaces it)")
            continue
        try:
            own = row.language == flow.language  # the flow's voice is for its own language
            data = synthesise(row, row.language, flow.voice if own else None, tts)
        except TTSError as e:
            print(f"ivr prompts: {e}", file=sys.stderr)
            return 2
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        print(f"wrote {path}")
    return status


def _print(table: list[Row], several: bool = False) -> None:
    """One line a row; a LANG column when the flow speaks several languages."""
    labels = {"recording": "yes", "missing": "MISSING", "text": "no", "template": "no"}
    lines = [("NODES", "ROLE", *(["LANG"] if several else []), "RECORDING", "PROMPT")]
    for r in table:
        what = f"{r.what} (template: spoken on the turn)" if r.kind == "template" else r.what
        lang = [r.language] if several else []
        lines.append((", ".join(r.nodes), r.role, *lang, labels[r.kind], " ".join(what.split())))
    columns = len(lines[0]) - 1
    widths = [max(len(line[i]) for line in lines) for i in range(columns)]
    for line in lines:
        cells = "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False))
        print(cells, line[columns])
    counts = {k: sum(r.kind == k for r in table) for k in labels}
    print(
        f"{len(table)} prompt part(s): {counts['recording']} recorded, {counts['text']} text "
        f"spoken by TTS, {counts['template']} templated, {counts['missing']} recording(s) missing"
    )
