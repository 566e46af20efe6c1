"""Training files that failed to load mid-run (NaN/Inf, undecodable, gone): one warning each, a count
kept across resumes, and a stop once more than `max(1, fraction × training files)` are bad."""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


class TooManyBadFiles(RuntimeError):
    """More training files failed to load than the run tolerates."""


def bad_file_limit(total: int, fraction: float) -> int:
    """How many bad files a training set of `total` files tolerates: ⌊fraction × total⌋, at least 1."""
    return max(1, int(fraction * total))


class BadFiles:
    """The distinct files found bad so far (path → reason), for a training set of `total` files."""

    def __init__(self, total: int, fraction: float) -> None:
        if not 0 <= fraction < 1:
            raise ValueError(f"train.max_bad_file_fraction must be in [0, 1), got {fraction}")
        self.total, self.limit = total, bad_file_limit(total, fraction)
        self.found: dict[str, str] = {}

    def add(self, skipped: Iterable[tuple[str, str]], step: int, warn: bool = True) -> list[str]:
        """Record `skipped` (path, reason) pairs; warn once per new file; the new paths.

        Raises TooManyBadFiles once more than `limit` distinct files are bad.
        """
        new = []
        for path, reason in skipped:
            if path in self.found:
                continue
            self.found[path] = reason
            new.append(path)
            if warn:
                log.warning("step %d: skipping %s: %s (%d bad training files so far; the run stops above %d)",
                            step, path, reason, len(self.found), self.limit)
        if len(self.found) > self.limit:
            shown = "; ".join(f"{p}: {r}" for p, r in list(self.found.items())[:3])
            raise TooManyBadFiles(
                f"step {step}: {len(self.found)} of the {self.total} training files failed to load, more than "
                f"the {self.limit} tolerated ({shown}{'; ...' if len(self.found) > 3 else ''}); fix or remove "
                f"them, or raise train.max_bad_file_fraction")
        return new

    def state_dict(self) -> list[list[str]]:
        return [[path, reason] for path, reason in self.found.items()]

    def load_state_dict(self, state: Iterable[Iterable[str]]) -> None:
        self.found = {str(path): str(reason) for path, reason in state}
