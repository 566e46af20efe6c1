"""A training run's folder: its checkpoints (`<run dir>/checkpoints/step_NNNNNNNN.pt`, the last N
kept) and the lock that lets one process at a time train in it (`<run dir>/train.lock`)."""

from __future__ import annotations

import datetime
import errno
import os
import re
import socket
from pathlib import Path

from ..atomic import remove_orphan_temp_files
from ..checkpoint import save_checkpoint

PATTERN = re.compile(r"step_(\d{8,})\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first (by step number)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PATTERN.search(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_step(run_dir: str | Path, step: int, state: dict, keep: int) -> Path:
    """Write the checkpoint of `step` atomically, then delete all but the newest `keep`."""
    path = checkpoint_dir(run_dir) / f"step_{step:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, **state)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def remove_unfinished(run_dir: str | Path) -> tuple[int, int]:
    """Delete the temp files of checkpoint saves that a killed run left in checkpoints/ (they can
    exceed 1 GB each); (files removed, bytes freed)."""
    return remove_orphan_temp_files(checkpoint_dir(run_dir), ".pt")


def set_aside(run_dir: str | Path) -> Path | None:
    """Rename the run's checkpoints/ to checkpoints.old-N (first free N), so that a fresh start
    (train.resume=false) neither resumes from nor deletes them; the new name, None if none."""
    folder = checkpoint_dir(run_dir)
    if not list_checkpoints(run_dir):
        return None
    n = 1
    while (dest := folder.with_name(f"checkpoints.old-{n}")).exists():
        n += 1
    folder.rename(dest)
    return dest


LOCK_NAME = "train.lock"


class RunDirInUse(OSError):
    """Another live process trains in the run dir."""


class RunDirLock:
    """An OS lock (`fcntl.flock`) on `<run dir>/train.lock`, held until `release()` or the process
    ends: a killed process's lock goes with it, so the file left behind never blocks a later run.
    The holder writes its pid, host and start time into the file, for the refusal to name."""

    def __init__(self, run_dir: str | Path) -> None:
        import fcntl  # POSIX only; imported here so that the module loads everywhere

        self.path = Path(run_dir) / LOCK_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip()
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = holder or "a process that is just starting"
            raise RunDirInUse(f"run_dir {Path(run_dir)} is in use by another training run ({holder}; lock "
                              f"{self.path}); wait for it to end, stop it, or choose another run_dir") from None
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on host {socket.gethostname()}, started {started}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Let another run take the run dir (the file stays: it blocks nobody)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None
