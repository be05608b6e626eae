"""Unpacking model archives: a model unpacks; archives that would write outside their
directory (.., absolute paths, links, devices) are refused whole, nothing written."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.errors import ModelError
from ivr.speech.archive import unpack

MODEL = {
    "vosk-model-test-0.1/README": b"Test English model for ivr\n",
    "vosk-model-test-0.1/am/final.mdl": b"\x00acoustic model",
    "vosk-model-test-0.1/conf/mfcc.conf": b"--sample-frequency=8000\n",
    "vosk-model-test-0.1/graph/words.txt": b"<eps> 0\nyes 1\nno 2\n#0 3\n<s> 4\n</s> 5\n",
}


def make_zip(
    path: Path, files: dict[str, bytes], extra: Callable[[zipfile.ZipFile], None] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        if extra:
            extra(z)
    return path


def make_tar(
    path: Path, files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None
) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra:
            extra(tar)
    return path


def tar_member(name: str, kind: bytes, linkname: str = "") -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        tar.addfile(info)

    return add


def zip_symlink(name: str, target: str) -> Callable[[zipfile.ZipFile], None]:
    def add(z: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, target)

    return add


@pytest.fixture
def place(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(where archives are made, the target, a directory beside it that must stay empty)."""
    made, target, outside = tmp_path / "made", tmp_path / "target", tmp_path / "outside"
    for directory in (made, target, outside):
        directory.mkdir()
    return made, target, outside


def files_in(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if not p.is_dir())


@pytest.mark.parametrize("make", [make_zip, make_tar], ids=["zip", "tar.gz"])
def test_a_model_unpacks(place, make):
    made, target, _ = place
    written = unpack(make(made / "model.archive", MODEL), target)
    assert files_in(target) == sorted(MODEL)
    assert sorted(str(p.relative_to(target)) for p in written) == sorted(MODEL)
    for name, data in MODEL.items():
        assert (target / name).read_bytes() == data
        assert not (target / name).stat().st_mode & 0o111  # nothing executable


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _through_a_link(made: Path, outside: Path) -> Path:
    """A symlink to a directory outside, then a file "inside" the symlink."""

    def add(tar: tarfile.TarFile) -> None:
        tar_member("m/link", tarfile.SYMTYPE, str(outside))(tar)
        tar.addfile(_info("m/link/evil.txt", 5), io.BytesIO(b"pwned"))

    return make_tar(made / "a.tgz", {}, add)


Make = Callable[[Path, Path], Path]  # (where archives are made, the outside) -> archive
HOSTILE: list[tuple[str, Make, str]] = [  # (what, how to make it, words of the refusal)
    ("zip ..", lambda d, o: make_zip(d / "a.zip", {**MODEL, "../outside/evil.txt": b"x"}), ".."),
    ("zip .. deep", lambda d, o: make_zip(d / "a.zip", {"m/../../outside/e": b"x"}), ".."),
    ("zip absolute", lambda d, o: make_zip(d / "a.zip", {str(o / "evil.txt"): b"x"}), "absolute"),
    ("zip windows ..", lambda d, o: make_zip(d / "a.zip", {"..\\outside\\e.txt": b"x"}), ".."),
    ("zip drive", lambda d, o: make_zip(d / "a.zip", {"C:\\evil.txt": b"x"}), "absolute"),
    (
        "zip symlink",
        lambda d, o: make_zip(d / "a.zip", MODEL, zip_symlink("m/l", str(o))),
        "symlink",
    ),
    ("tar ..", lambda d, o: make_tar(d / "a.tgz", {**MODEL, "../outside/evil.txt": b"x"}), ".."),
    ("tar absolute", lambda d, o: make_tar(d / "a.tgz", {str(o / "evil.txt"): b"x"}), "absolute"),
    ("tar symlink out, a file through it", _through_a_link, "link"),
    (
        "tar symlink inside",
        lambda d, o: make_tar(d / "a.tgz", {"m/a": b"x"}, tar_member("m/l", tarfile.SYMTYPE, "a")),
        "link",
    ),
    (
        "tar hardlink",
        lambda d, o: make_tar(
            d / "a.tgz", MODEL, tar_member("m/h", tarfile.LNKTYPE, "/etc/passwd")
        ),
        "link",
    ),
    (
        "tar device",
        lambda d, o: make_tar(d / "a.tgz", MODEL, tar_member("m/dev", tarfile.CHRTYPE)),
        "not a regular",
    ),
    (
        "tar fifo",
        lambda d, o: make_tar(d / "a.tgz", MODEL, tar_member("m/fifo", tarfile.FIFOTYPE)),
        "not a regular",
    ),
    (
        "zip twice",
        lambda d, o: make_zip(d / "a.zip", {"m/a": b"1"}, lambda z: z.writestr("m/a", b"2")),
        "twice",
    ),
]


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(("what", "make", "words"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_archives_are_refused_whole(place, what, make, words):
    made, target, outside = place
    with pytest.raises(ModelError, match="refused") as refused:
        unpack(make(made, outside), target)
    assert words in str(refused.value)
    assert "nothing was unpacked" in str(refused.value)
    assert files_in(target) == [] and files_in(outside) == []


def test_not_an_archive(place):
    made, target, _ = place
    (made / "x.bin").write_bytes(b"not an archive at all")
    with pytest.raises(ModelError, match="not a zip or tar.gz"):
        unpack(made / "x.bin", target)


def test_a_damaged_archive(place):
    made, target, _ = place
    data = make_zip(made / "a.zip", MODEL).read_bytes()
    (made / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="damaged"):
        unpack(made / "cut.zip", target)
