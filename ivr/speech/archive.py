"""Unpacking a model archive (zip or tar.gz) without letting it write anywhere else.

An archive names its own paths, and a hostile (or broken) one can name `../../.bashrc`,
`/etc/cron.d/x`, a symlink to `/` followed by a file "inside" it, a hard link to a file
elsewhere, or a device. Every member is checked before anything is written, and the
whole archive is refused at the first bad one: absolute paths, `..`, links of any kind
(no Vosk model has one, and a link that stays inside can still be the path a later
member escapes through), anything but regular files and directories, and more than
`MAX_UNPACKED` bytes in all. Files are then created with O_EXCL (an existing path, link
or not, is never followed) and ordinary permissions (no setuid, nothing executable).
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from ivr.errors import ModelError

MAX_UNPACKED = 8 << 30  # bytes: the largest Vosk models unpack to ~4 GB
_CHUNK = 1 << 20


def unpack(archive: Path, target: Path) -> list[Path]:
    """Unpack `archive` (zip or tar.gz, told by its first bytes) into the directory
    `target`, which must exist; returns the files written. ModelError, with nothing
    written, when a member is unsafe."""
    with archive.open("rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        return _unzip(archive, target)
    if magic.startswith(b"\x1f\x8b"):
        return _untar(archive, target)
    raise ModelError(f"{archive.name}: not a zip or tar.gz archive")


def _unzip(archive: Path, target: Path) -> list[Path]:
    try:
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            total, seen = 0, set[PurePosixPath]()
            for info in members:
                mode = info.external_attr >> 16  # Unix mode, when a Unix zip made it
                kind = stat.S_IFMT(mode)
                if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                    what = "a symlink" if kind == stat.S_IFLNK else "not a regular file"
                    raise _unsafe(archive, info.filename, what)
                _once(archive, seen, _relative(archive, info.filename), info.is_dir())
                total += info.file_size
            _check_total(archive, total)
            written = []
            for info in members:
                path = target.joinpath(*_relative(archive, info.filename).parts)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                else:
                    with z.open(info) as source:
                        written.append(_write(target, path, source, info.file_size))
            return written
    except zipfile.BadZipFile as e:
        raise ModelError(f"{archive.name}: a damaged zip archive ({e})") from None


def _untar(archive: Path, target: Path) -> list[Path]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            total, seen = 0, set[PurePosixPath]()
            for member in members:
                if member.issym() or member.islnk():
                    raise _unsafe(archive, member.name, f"a link (to {member.linkname!r})")
                if not (member.isfile() or member.isdir()):
                    raise _unsafe(archive, member.name, "not a regular file or directory")
                _once(archive, seen, _relative(archive, member.name), member.isdir())
                total += member.size
            _check_total(archive, total)
            written = []
            for member in members:
                path = target.joinpath(*_relative(archive, member.name).parts)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                source = tar.extractfile(member)
                assert source is not None  # a regular file has content
                with source:
                    written.append(_write(target, path, source, member.size))
            return written
    except (tarfile.TarError, EOFError) as e:
        raise ModelError(f"{archive.name}: a damaged tar.gz archive ({e})") from None


def _relative(archive: Path, name: str) -> PurePosixPath:
    """A member's name as a path below the target; ModelError when it is not one."""
    name = name.replace("\\", "/")  # zips made on Windows
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise _unsafe(archive, name, "an absolute path")
    if ".." in path.parts:
        raise _unsafe(archive, name, "a path out of the directory (..)")
    if not path.parts:
        raise _unsafe(archive, name, "an empty name")
    return path


def _once(archive: Path, seen: set[PurePosixPath], path: PurePosixPath, directory: bool) -> None:
    """A file may be in an archive once: a second copy would silently replace the first."""
    if not directory:
        if path in seen:
            raise _unsafe(archive, str(path), "in the archive twice")
        seen.add(path)


def _write(target: Path, path: Path, source: IO[bytes], size: int) -> Path:
    """One file, at a path no link leads through, with at most `size` bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    real_parent = Path(os.path.realpath(path.parent))
    if not real_parent.is_relative_to(os.path.realpath(target)):
        raise ModelError(f"{path}: would be written outside {target}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise ModelError(f"{path.relative_to(target)}: twice in the archive") from None
    with os.fdopen(fd, "wb") as out:
        copied = 0
        for chunk in _chunks(source):
            copied += len(chunk)
            if copied > size:  # a header that lies about the size
                raise ModelError(f"{path.relative_to(target)}: longer than the archive says")
            out.write(chunk)
    return path


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while chunk := source.read(_CHUNK):
        yield chunk


def _check_total(archive: Path, total: int) -> None:
    if total > MAX_UNPACKED:
        raise ModelError(
            f"{archive.name}: would unpack to {total / 2**30:.1f} GiB, more than a model "
            f"needs ({MAX_UNPACKED / 2**30:.0f} GiB)"
        )


def _unsafe(archive: Path, name: str, what: str) -> ModelError:
    return ModelError(f"{archive.name}: refused, {name!r} is {what}; nothing was unpacked")
