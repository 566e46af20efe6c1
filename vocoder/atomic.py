"""Atomic file writes (a temp file beside the target, fsync, rename) for audio outputs and checkpoints,
and the removal of the temp files that a killed run leaves behind.

A temp file is named `.<name>.<host>-<pid>-<random>.tmp` (host: 8 hex digits of the host name's hash),
so that a later run can tell its leftovers (this host, a process that no longer runs) from the
file another live run is writing. It is created with mode 0o666 less the umask, the mode any other
file the user writes gets (tempfile.mkstemp would make it 0o600).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temp name for `path`, in the same folder (so that the rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _publish_without_replacing(tmp: Path, path: Path) -> None:
    """Give the finished `tmp` the name `path` only if no file has it, atomically (a hard link fails
    when `path` exists, whoever created it meanwhile); FileExistsError otherwise. Where hard links are
    not supported, the name is claimed with O_EXCL first and then replaced by the finished file."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # FileExistsError if taken
        try:
            os.replace(tmp, path)
        except BaseException:
            path.unlink(missing_ok=True)  # the empty file claimed above, nobody else's
            raise
        return
    tmp.unlink()


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], replace: bool = True) -> Path:
    """Call `write(file)` on a temp file beside `path`, fsync it, rename it to `path`, fsync the folder.

    `path` appears complete or not at all: on any error (a full disk, an interrupt) the temp file is
    removed, the error propagates, and a file that was at `path` is left as it was. With
    `replace=False` an existing `path` is never replaced, even one that another process creates while
    this one writes: FileExistsError (no check-then-rename race).
    """
    path = Path(path)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _publish_without_replacing(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OverflowError:
        return False
    return True


def orphan_temp_files(folder: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Temp files of `atomic_write` in `folder` (not searched recursively) whose target name ends with
    `suffix` and whose writer, a process of this host, no longer runs."""
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    host, found = _host_tag(), []
    for entry in entries:
        match = _TEMP.match(entry.name)
        if (match and match["name"].endswith(suffix) and match["host"] == host
                and entry.is_file(follow_symlinks=False) and not _running(int(match["pid"]))):
            found.append(folder / entry.name)
    return sorted(found)


def remove_orphan_temp_files(folder: str | os.PathLike, suffix: str = "") -> tuple[int, int]:
    """Delete `orphan_temp_files(folder, suffix)`; (files removed, bytes freed)."""
    count = freed = 0
    for path in orphan_temp_files(folder, suffix):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another run cleaned it up first
            continue
        count, freed = count + 1, freed + size
    return count, freed
