"""Fetching an official Vosk model archive: checked by size and SHA-256, unpacked safely.

Alpha Cephei publishes the models at https://alphacephei.com/vosk/models/NAME.zip with
sizes and MD5s but no SHA-256. `KNOWN` pins the size and SHA-256 of a few small models,
as computed from the official archives and published independently by more than one
project; any other archive needs `--sha256` from a source the operator trusts, since
a model is code-like input (Kaldi trusts what it loads). The download goes to a
temporary file beside the target, the archive to a temporary directory there (see
`ivr.speech.archive`), and the model is renamed into place only when every check passed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ivr.errors import ModelError
from ivr.speech.archive import unpack
from ivr.speech.models import is_model

BASE_URL = "https://alphacephei.com/vosk/models/"
MAX_DOWNLOAD = 4 << 30  # bytes, for an archive of unknown size: the largest models are ~3 GB
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Known:
    """An official archive: its size in bytes, SHA-256 (None: none known, give --sha256)
    and language."""

    size: int
    sha256: str | None
    language: str


KNOWN = {
    "vosk-model-small-en-us-0.15": Known(
        41205931, "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498", "en-US"
    ),
    "vosk-model-small-de-0.15": Known(
        46499967, "b7e53c90b1f0a38456f4cd62b366ecd58803cd97cd42b06438e2c131713d5e43", "de-DE"
    ),
    "vosk-model-small-es-0.42": Known(
        39817833, "09b239888f633ef2f0b4e09736e3d9936acfd810bc65d53fad45261762c6511f", "es-ES"
    ),
    "vosk-model-small-fr-0.22": Known(
        42233323, "cabf6180e177eb9b3a9a9d43a437bd5e549f3a7d09525e5d69a3fed787be12ad", "fr-FR"
    ),
    "vosk-model-small-it-0.22": Known(
        49665141, "9ec65e75861d1c6c2e457cccd932705340dcdf233f5b239f00733b4de0bf3267", "it-IT"
    ),
    "vosk-model-small-ru-0.22": Known(
        46236750, "961d5ff98a17f4aa6de69864d0aa71fa5bac682301d2b5d17a3f24c5c99a46d4", "ru-RU"
    ),
    "vosk-model-small-pt-0.3": Known(
        32453112, "6e1ce909032e1afa7a88e68a3d628ecafff302bdf195befab308826c395e93b7", "pt-BR"
    ),
    "vosk-model-small-ko-0.22": Known(86914329, None, "ko-KR"),  # its size only
}

Progress = Callable[[int, int | None], None]  # bytes so far, bytes in all (None: unknown)


async def download(
    name: str,
    to: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch the archive of model `name` (from `url`, default the official one), check
    it, unpack it into `to`/`name`; returns that directory. ModelError says what failed;
    nothing is left behind when something does."""
    if not _NAME.fullmatch(name):
        raise ModelError(f"{name!r}: a model name is letters, digits, '.', '-' and '_'")
    known = KNOWN.get(name)
    size, digest = _expected(name, known, sha256)
    url = url or f"{BASE_URL}{name}.zip"
    if urlsplit(url).scheme not in ("http", "https"):
        raise ModelError(f"{url}: only http and https URLs")
    to.mkdir(parents=True, exist_ok=True)
    final = to / name
    if final.exists():
        raise ModelError(f"{final} is already there: remove it first to download it again")
    fd, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=to)
    os.close(fd)
    unpacked = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=to))
    try:
        await _fetch(url, Path(part), size, digest, progress)
        unpack(Path(part), unpacked)
        root = _model_root(unpacked)
        if root is None:
            raise ModelError(f"{url}: the archive holds no Vosk model (no am/final.mdl)")
        root.rename(final)
        return final
    finally:
        Path(part).unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)


def _expected(name: str, known: Known | None, sha256: str | None) -> tuple[int | None, str]:
    """The size (None: unknown) and SHA-256 the archive must have."""
    if sha256 is not None:
        digest = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ModelError(f"--sha256: expected 64 hexadecimal digits, got {sha256!r}")
        same = known is not None and known.sha256 == digest
        return (known.size if known and (same or known.sha256 is None) else None), digest
    if known is None or known.sha256 is None:
        raise ModelError(
            f"no SHA-256 is known here for {name}: give --sha256 HEX, the archive's checksum "
            "from a source you trust (known: "
            + ", ".join(n for n, k in KNOWN.items() if k.sha256)
            + ")"
        )
    return known.size, known.sha256


async def _fetch(
    url: str, part: Path, size: int | None, digest: str, progress: Progress | None
) -> None:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    hasher, received = hashlib.sha256(), 0
    limit = size if size is not None else MAX_DOWNLOAD
    try:
        async with aiohttp.ClientSession(timeout=timeout) as client:
            async with client.get(url) as response:
                if response.status != 200:
                    raise ModelError(f"{url}: the server answered {response.status}")
                length = response.content_length
                if size is not None and length is not None and length != size:
                    raise ModelError(f"{url}: {length} bytes on offer, the archive is {size}")
                with part.open("wb") as out:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        received += len(chunk)
                        if received > limit:
                            raise ModelError(f"{url}: more than the {limit} bytes expected")
                        hasher.update(chunk)
                        out.write(chunk)
                        if progress is not None:
                            progress(received, size or length)
    except aiohttp.ClientError as e:
        raise ModelError(f"{url}: the download failed ({e})") from None
    if size is not None and received != size:
        raise ModelError(f"{url}: {received} bytes received, the archive is {size}")
    if hasher.hexdigest() != digest:
        raise ModelError(
            f"{url}: the archive's SHA-256 is {hasher.hexdigest()}, not {digest}: "
            "not the archive expected (corrupt, or replaced); nothing was unpacked"
        )


def _model_root(unpacked: Path) -> Path | None:
    """The model directory in what was unpacked: the archive's one top directory (as
    the official archives have), or its top level itself."""
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and is_model(entries[0]):
        return entries[0]
    return unpacked if is_model(unpacked) else None
