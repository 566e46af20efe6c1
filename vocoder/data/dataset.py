"""The audio dataset: random training segments or whole validation utterances; collate; build policy.

Broken files found at start-up: `build_dataset` skips broken files with a warning count (one
`logging` warning per file with its reason, then the count) and raises only if none are left;
it also warns once about files that loading will resample or mix down to mono.
Problems found while loading (NaN/Inf, undecodable data, a file gone): the item is taken from the
next file of the list that loads instead, so batches stay full and the choice is deterministic; the
item names the skipped files and why (`skipped`), and the training loop warns, counts and decides.
In a DataLoader worker every item first seeds torch, numpy and `random` from (seed, epoch, index),
so whatever draws from them while loading is the same in a resumed run, whichever worker loads it.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from ..audio.io import AudioError, load_audio
from ..audio.mel import stft_min_samples
from .files import AudioHeader, scan_audio_files
from .pitch_tracks import PitchTracks
from .sampler import mixed_seed

log = logging.getLogger(__name__)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one item of one epoch."""
    return mixed_seed(seed, epoch, index)


def seed_worker_rngs(seed: int) -> None:
    """Seed torch, numpy and `random` of this DataLoader worker (never the main process's)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class AudioDataset(Dataset):
    """Mono float32 audio at `sampling_rate`: a `segment_size` crop, or (None) the whole utterance.

    Crops start at a random sample when `train` (else at 0), reproducible from (seed, epoch, index);
    short clips are zero-padded at the end. Whole utterances are trimmed to a multiple of `hop_size`.
    Call `set_epoch` before each epoch (re-applied in DataLoader workers unless they are persistent).
    A file that fails to load is replaced by the next one that loads (see the module docstring);
    files in `known_bad` are passed over without trying them again. With `pitch` (a
    `vocoder.data.pitch_tracks.PitchTracks`, for a generator with a pitch source) each item also holds
    'f0' and 'voiced', the pitch tracker's values at its mel frames.
    """

    def __init__(self, files: Sequence[str | Path], sampling_rate: int, segment_size: int | None = None,
                 hop_size: int = 256, train: bool = True, seed: int = 0, pitch: PitchTracks | None = None) -> None:
        if hop_size < 1:
            raise ValueError(f"hop_size must be at least 1, got {hop_size}")
        if segment_size is not None and (segment_size < hop_size or segment_size % hop_size):
            raise ValueError(f"segment_size ({segment_size}) must be a positive multiple of "
                             f"hop_size ({hop_size})")
        if not files:
            raise ValueError("AudioDataset needs at least one audio file")
        self.files = [Path(f) for f in files]
        self.sampling_rate, self.segment_size, self.hop_size = sampling_rate, segment_size, hop_size
        self.train, self.seed, self.epoch = train, seed, 0
        self.known_bad: set[str] = set()
        self.pitch = pitch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random segments the next items come from."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> Tensor:
        """The whole file, 1-D float32; `load_audio` raises naming the file (unreadable, empty, NaN/Inf)."""
        audio, _ = load_audio(self.files[index], self.sampling_rate, mono=True)
        return audio.to(torch.float32).reshape(-1)

    def __getitem__(self, index: int) -> dict:
        """{'audio', 'path', 'skipped': [(path, reason)]} of `index`, or of the next file that loads."""
        if get_worker_info() is not None:
            seed_worker_rngs(item_seed(self.seed, self.epoch, index))
        skipped = []
        for step in range(len(self.files)):
            current = (index + step) % len(self.files)
            if str(self.files[current]) in self.known_bad:
                continue
            try:
                audio = self.load(current)
            except (OSError, AudioError) as err:
                skipped.append((str(self.files[current]), str(err).strip() or type(err).__name__))
                continue
            return {**self.item(current, audio), "skipped": skipped}
        shown = "; ".join(reason for _, reason in skipped[:3]) or "all are known to be bad"
        raise AudioError(f"none of the {len(self.files)} files loads ({shown}"
                         f"{'; ...' if len(skipped) > 3 else ''})")

    def item(self, index: int, audio: Tensor) -> dict:
        """The segment (or whole utterance) of file `index`, from its loaded audio."""
        path = self.files[index]
        if self.segment_size is None:
            length = audio.numel() - audio.numel() % self.hop_size
            if length == 0:
                raise ValueError(f"{path}: {audio.numel()} samples, shorter than one hop ({self.hop_size})")
            return {"audio": audio[:length].clone(), "path": str(path), **self._pitch(index, audio, 0, length)}
        seg, whole = self.segment_size, audio
        if audio.numel() < seg:
            audio = torch.nn.functional.pad(audio, (0, seg - audio.numel()))
        start = 0
        if self.train and audio.numel() > seg:
            gen = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))
            start = int(torch.randint(0, audio.numel() - seg + 1, (1,), generator=gen))
        return {"audio": audio[start:start + seg].clone(), "path": str(path), **self._pitch(index, whole, start, seg)}

    def _pitch(self, index: int, audio: Tensor, start: int, length: int) -> dict:
        """{'f0', 'voiced'} of the `length` samples from `start` of file `index` (with `pitch`), else {}."""
        if self.pitch is None:
            return {}
        f0, voiced = self.pitch.frames(self.files[index], audio, start, length // self.hop_size)
        return {"f0": f0, "voiced": voiced}


def collate(batch: list[dict]) -> dict:
    """Items to {'audio': (B, 1, T) float32, 'lengths': (B,) int64, 'path': [str], 'skipped':
    [(path, reason)] of files that failed to load, 'mel' where the items have one, and 'f0', 'voiced'
    (B, frames) where they have those}; pads to the longest (F0 with its last value, voicing with 0)."""
    lengths = torch.tensor([item["audio"].numel() for item in batch], dtype=torch.int64)
    longest = int(lengths.max())
    audio = torch.zeros(len(batch), 1, longest, dtype=torch.float32)
    for row, item in enumerate(batch):
        audio[row, 0, : item["audio"].numel()] = item["audio"]
    out = {"audio": audio, "lengths": lengths, "path": [item["path"] for item in batch],
           "skipped": [bad for item in batch for bad in item.get("skipped", ())]}
    if "mel" in batch[0]:  # teacher-forced pairs (vocoder.data.mel_pairs): (B, num_mels, frames)
        frames = max(item["mel"].shape[1] for item in batch)
        out["mel"] = torch.stack([torch.nn.functional.pad(item["mel"], (0, frames - item["mel"].shape[1]),
                                                          value=float(item["mel"].min())) for item in batch])
    if "f0" in batch[0]:  # a pitch source's targets (vocoder.data.pitch_tracks)
        frames = max(item["f0"].numel() for item in batch)
        out["f0"] = torch.stack([torch.nn.functional.pad(item["f0"][None], (0, frames - item["f0"].numel()),
                                                         mode="replicate")[0] for item in batch])
        out["voiced"] = torch.stack([torch.nn.functional.pad(item["voiced"], (0, frames - item["voiced"].numel()))
                                     for item in batch])
    return out


def shortest_usable(segment_size: int | None, hop_size: int, n_fft: int | None) -> tuple[int, str]:
    """(fewest samples, what they are needed for) of a usable file: one hop for training segments
    (short clips are padded); for whole utterances (`segment_size` None, validation) with `n_fft`
    given, a mel STFT of the utterance trimmed to whole hops."""
    if segment_size is not None or n_fft is None:
        return hop_size, "one hop"
    need = -(-stft_min_samples(n_fft, hop_size) // hop_size) * hop_size
    return need, f"what a mel STFT of the utterance needs (n_fft={n_fft}, trimmed to whole hops of {hop_size})"


def build_dataset(files: Sequence[str | Path], sampling_rate: int, segment_size: int | None = None,
                  hop_size: int = 256, train: bool = True, seed: int = 0,
                  name: str = "dataset", n_fft: int | None = None,
                  pitch: PitchTracks | None = None) -> AudioDataset:
    """An AudioDataset of the usable `files` (with `pitch`, see AudioDataset): skips broken files
    with a warning count.

    Each broken file (missing, unreadable, empty, too short: see `shortest_usable` and
    `check_audio_files`) gets one warning line with its reason, then one line counts them; raises if
    none are left.
    """
    files = list(files)
    if not files:
        raise ValueError(f"{name}: no audio files given")
    need, needed_for = shortest_usable(segment_size, hop_size, n_fft)
    headers, broken = scan_audio_files(files, min_samples=need, sampling_rate=sampling_rate, needed_for=needed_for)
    for path, reason in broken:
        log.warning("%s: skipping %s: %s", name, path, reason)
    if broken:
        log.warning("%s: skipped %d broken of %d files; %d left", name, len(broken), len(files), len(headers))
    if not headers:
        shown = "; ".join(f"{p}: {r}" for p, r in broken[:3])
        raise ValueError(f"{name}: no usable audio files: all {len(files)} are broken ({shown}"
                         f"{'; ...' if len(broken) > 3 else ''})")
    _say_conversions(headers, sampling_rate, name)
    return AudioDataset([h.path for h in headers], sampling_rate, segment_size, hop_size, train, seed, pitch)


def _say_conversions(headers: list[AudioHeader], sampling_rate: int, name: str) -> None:
    """One warning each for files that loading will resample or mix down to mono, with an example."""
    rates = Counter(h.sampling_rate for h in headers if h.sampling_rate != sampling_rate)
    if rates:
        example = next(h.path for h in headers if h.sampling_rate != sampling_rate)
        shown = ", ".join(f"{n} at {rate} Hz" for rate, n in sorted(rates.items()))
        log.warning("%s: %d of %d files will be resampled to %d Hz as they load (%s; e.g. %s)",
                    name, rates.total(), len(headers), sampling_rate, shown, example)
    multi = [h for h in headers if h.channels > 1]
    if multi:
        log.warning("%s: %d of %d files have several channels and will be mixed down to mono (e.g. %s)",
                    name, len(multi), len(headers), multi[0].path)
