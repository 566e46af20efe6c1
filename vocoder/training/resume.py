"""Which checkpoint a run resumes from: the newest one that loads. Newer ones that do not (corrupt,
truncated, not a training checkpoint) are named in a warning and set aside as `*.corrupt`, never
deleted; when none loads, resuming is refused with what to do instead."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, load_checkpoint
from .run_dir import checkpoint_dir, list_checkpoints

log = logging.getLogger(__name__)

TRAINING_KEYS = ("generator", "discriminators", "optim_g", "optim_d", "sched_g", "sched_d", "step")


class ResumeError(RuntimeError):
    """The run dir cannot be resumed as asked (another config, or a step past train.max_steps)."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message (torch's can run to a dozen lines)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def load_training_checkpoint(path: Path, map_location: Any) -> dict:
    """A checkpoint dict with every part a resume needs; CheckpointError naming the file otherwise."""
    ckpt = load_checkpoint(path, map_location=map_location)
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint: it lacks {', '.join(missing)}")
    if not isinstance(ckpt["step"], int) or ckpt["step"] < 0:
        raise CheckpointError(f"{path} is not a training checkpoint: its step is {ckpt['step']!r}")
    return ckpt


def newest_loadable(run_dir: Path, map_location: Any) -> tuple[Path, dict, list[tuple[Path, str]]] | None:
    """(path, checkpoint, [(newer unloadable path, reason)]) of the newest checkpoint that loads;
    None when the run has none. Raises CheckpointError when there are some and none loads."""
    found = list_checkpoints(run_dir)
    bad: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            return path, load_training_checkpoint(path, map_location), bad
        except CheckpointError as err:
            bad.append((path, first_line(err)))
    if not bad:
        return None
    raise CheckpointError(
        f"no checkpoint in {checkpoint_dir(run_dir)} loads ({len(bad)} tried; newest: {bad[0][1]}); "
        f"move the folder away or rerun with train.resume=false, which sets it aside and starts over")


def set_aside_corrupt(bad: list[tuple[Path, str]], resumed: Path) -> list[Path]:
    """Rename each unloadable checkpoint to `<name>.corrupt` (first free `.corrupt-N`) with a warning,
    so that neither resuming nor the keep-last-N cleanup takes it again; the new names."""
    moved = []
    for path, reason in bad:
        dest, n = path.with_name(path.name + ".corrupt"), 1
        while dest.exists():
            dest, n = path.with_name(f"{path.name}.corrupt-{n}"), n + 1
        path.rename(dest)
        moved.append(dest)
        log.warning("%s; set aside as %s, resuming from the previous checkpoint %s", reason, dest.name, resumed)
    return moved


def config_differences(saved: Mapping | None, current: Mapping | None, ignore: set[str] = frozenset()) -> list[str]:
    """Keys (outside `ignore`) whose values differ between two config sections, sorted."""
    saved, current = saved or {}, current or {}
    return sorted(k for k in set(saved) | set(current) if k not in ignore and saved.get(k) != current.get(k))
