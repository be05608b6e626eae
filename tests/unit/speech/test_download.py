"""Downloading a model from a real HTTP server on loopback (standing in for
alphacephei.com): checked by size and SHA-256, unpacked safely, renamed into place only
when all is well; hostile archives refused with nothing written outside the target."""

from __future__ import annotations

import asyncio
import hashlib
import tarfile
from pathlib import Path

import pytest
from aiohttp import web

from ivr.cli import main
from ivr.errors import ModelError
from ivr.speech import download as downloads
from ivr.speech.download import Known, download
from tests.unit.speech.test_archive import MODEL, make_tar, make_zip, tar_member

NAME = "vosk-model-test-0.1"


class Archives:
    """A file server for archives made in the test."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.url = ""

    def add(self, path: Path) -> tuple[str, str]:
        """Serve the archive at `path`: its URL and SHA-256."""
        data = path.read_bytes()
        self.files[path.name] = data
        return f"{self.url}/{path.name}", hashlib.sha256(data).hexdigest()

    async def handle(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)


@pytest.fixture
async def archives(aiohttp_server) -> Archives:
    served = Archives()
    app = web.Application()
    app.router.add_get("/{name}", served.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    served.url = str(server.make_url("")).rstrip("/")
    return served


@pytest.fixture
def place(tmp_path: Path) -> tuple[Path, Path, Path]:
    made, models, outside = tmp_path / "made", tmp_path / "models", tmp_path / "outside"
    made.mkdir()
    outside.mkdir()
    return made, models, outside


def everything(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize("make", [make_zip, make_tar], ids=["zip", "tar.gz"])
async def test_a_model_is_downloaded_checked_and_unpacked(archives, place, make):
    made, models, _ = place
    url, sha = archives.add(make(made / f"{NAME}.archive", MODEL))
    path = await download(NAME, models, url=url, sha256=sha.upper())
    assert path == models / NAME
    assert (path / "am" / "final.mdl").read_bytes() == MODEL[f"{NAME}/am/final.mdl"]
    assert everything(models) == sorted(
        [NAME, *(n for n in MODEL), f"{NAME}/am", f"{NAME}/conf", f"{NAME}/graph"]
    )  # no temporary file or directory left


async def test_an_archive_with_the_model_at_its_top(archives, place):
    made, models, _ = place
    flat = {name.split("/", 1)[1]: data for name, data in MODEL.items()}
    url, sha = archives.add(make_zip(made / "flat.zip", flat))
    path = await download("flat-model", models, url=url, sha256=sha)
    assert (path / "am" / "final.mdl").is_file() and path == models / "flat-model"


async def test_a_known_model_needs_no_checksum_given(archives, place, monkeypatch):
    made, models, _ = place
    archive = make_zip(made / f"{NAME}.zip", MODEL)
    url, sha = archives.add(archive)
    monkeypatch.setitem(downloads.KNOWN, NAME, Known(archive.stat().st_size, sha, "en-US"))
    assert (await download(NAME, models, url=url)).is_dir()


async def test_a_known_size_is_checked(archives, place, monkeypatch):
    made, models, _ = place
    url, sha = archives.add(make_zip(made / f"{NAME}.zip", MODEL))
    monkeypatch.setitem(downloads.KNOWN, NAME, Known(1234, sha, "en-US"))
    with pytest.raises(ModelError, match="the archive is 1234"):
        await download(NAME, models, url=url)
    assert everything(models) == []


async def test_a_wrong_checksum_is_refused(archives, place):
    made, models, _ = place
    url, _ = archives.add(make_zip(made / f"{NAME}.zip", MODEL))
    with pytest.raises(ModelError, match="SHA-256 is .* not the archive expected"):
        await download(NAME, models, url=url, sha256="0" * 64)
    assert everything(models) == []


async def test_an_unknown_model_needs_a_checksum(place):
    with pytest.raises(ModelError, match="give --sha256"):
        await download("vosk-model-made-up-1.0", place[1])
    with pytest.raises(ModelError, match="give --sha256"):
        await download("vosk-model-small-ko-0.22", place[1])  # its size is known, not its hash
    with pytest.raises(ModelError, match="64 hexadecimal"):
        await download(NAME, place[1], sha256="abc")


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", ""])
async def test_a_model_name_is_a_plain_name(place, name):
    with pytest.raises(ModelError, match="a model name is"):
        await download(name, place[1], sha256="0" * 64)


async def test_not_found_and_not_http(archives, place):
    with pytest.raises(ModelError, match="answered 404"):
        await download(NAME, place[1], url=f"{archives.url}/missing.zip", sha256="0" * 64)
    with pytest.raises(ModelError, match="only http and https"):
        await download(NAME, place[1], url="file:///etc/passwd", sha256="0" * 64)


async def test_an_archive_without_a_model(archives, place):
    made, models, _ = place
    url, sha = archives.add(make_zip(made / "junk.zip", {"readme.txt": b"hello"}))
    with pytest.raises(ModelError, match="holds no Vosk model"):
        await download(NAME, models, url=url, sha256=sha)
    assert everything(models) == []


async def test_a_model_already_there_is_not_replaced(archives, place):
    made, models, _ = place
    url, sha = archives.add(make_zip(made / f"{NAME}.zip", MODEL))
    await download(NAME, models, url=url, sha256=sha)
    with pytest.raises(ModelError, match="already there"):
        await download(NAME, models, url=url, sha256=sha)


@pytest.mark.parametrize(
    "make",
    [
        lambda made, out: make_zip(made / "a.zip", {**MODEL, "../outside/evil.txt": b"x"}),
        lambda made, out: make_zip(made / "a.zip", {**MODEL, str(out / "evil.txt"): b"x"}),
        lambda made, out: make_tar(made / "a.tgz", {**MODEL, "../outside/evil.txt": b"x"}),
        lambda made, out: make_tar(
            made / "a.tgz", MODEL, tar_member("l", tarfile.SYMTYPE, str(out))
        ),
        lambda made, out: make_tar(
            made / "a.tgz", MODEL, tar_member("h", tarfile.LNKTYPE, str(out / "x"))
        ),
    ],
    ids=["zip ..", "zip absolute", "tar ..", "tar symlink", "tar hardlink"],
)
async def test_a_hostile_archive_with_the_right_checksum_is_refused(archives, place, make):
    made, models, outside = place
    url, sha = archives.add(make(made, outside))
    with pytest.raises(ModelError, match="refused"):
        await download(NAME, models, url=url, sha256=sha)
    assert everything(models) == [] and everything(outside) == []


async def test_the_command(archives, place, capsys):
    made, models, outside = place
    url, sha = archives.add(make_zip(made / f"{NAME}.zip", MODEL))
    command = ["models", "download", NAME, "--url", url, "--sha256", sha, "--to", str(models)]
    assert await asyncio.to_thread(main, command) == 0  # the command runs its own loop
    out = capsys.readouterr().out
    assert f"checked and unpacked to {models / NAME}" in out
    assert f"IVR_VOSK_MODELS=en-US={models / NAME}" in out  # its README says English

    bad_url, bad_sha = archives.add(make_zip(made / "bad.zip", {"../outside/x": b"x"}))
    command = ["models", "download", "bad", "--url", bad_url, "--sha256", bad_sha]
    assert await asyncio.to_thread(main, [*command, "--to", str(models)]) == 1
    err = capsys.readouterr().err
    assert "refused, '../outside/x' is a path out of the directory (..)" in err
    assert everything(outside) == []
