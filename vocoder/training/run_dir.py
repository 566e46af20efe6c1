"""Checkpoints of a training run: `<run dir>/checkpoints/step_NNNNNNNN.pt`, the last N kept."""

from __future__ import annotations

import re
from pathlib import Path

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
