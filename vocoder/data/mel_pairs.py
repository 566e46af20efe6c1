"""Teacher-forced pairs (`data.mel_dir`, NVIDIA's --input_mels_dir with --fine_tuning): each audio file with
the mel a TTS model made of it, matched by relative path (`mel_dir/<path under root>.npy` or `.pt`, shape
[num_mels, frames]); segments cut at the same place in both. A pair whose lengths disagree by up to
`tolerance` frames is trimmed to the shorter; one that disagrees by more, or has the wrong number of
bands, or no mel file, is reported per file and skipped (at start-up, and mid-run as a bad file)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..audio.io import AudioError
from ..audio.mel import LOG_CLAMP
from .dataset import AudioDataset, item_seed
from .files import scan_audio_files
from .mel_files import MEL_SUFFIXES, read_mel_file

log = logging.getLogger(__name__)
SILENCE = math.log(LOG_CLAMP)  # the mel of silence: what short segments are padded with


def mel_path(audio: Path, root: Path, mel_dir: Path) -> Path | None:
    """The mel file of `audio` (its path under `root`, suffix replaced), or None."""
    stem = Path(audio).resolve().relative_to(Path(root).resolve()).with_suffix("")
    found = [mel_dir / f"{stem}{suffix}" for suffix in MEL_SUFFIXES]
    return next((p for p in found if p.is_file()), None)


def load_mel(path: Path, num_mels: int, shape_only: bool = False) -> Tensor | tuple[int, ...]:
    """`read_mel_file` as float32, its errors as AudioError (a bad file of the training set)."""
    try:
        mel = read_mel_file(path, num_mels, shape_only)
        return mel if shape_only else mel.float()
    except ValueError as err:
        raise AudioError(str(err)) from err


def usable_frames(path: Path, shape: tuple[int, ...], samples: int, num_mels: int, hop: int, tolerance: int) -> int:
    """Frames both the mel and the audio have; AudioError when they disagree by more than `tolerance`."""
    bands, frames = shape
    if bands != num_mels:
        raise AudioError(f"{path}: {bands} mel bands, the model takes {num_mels}")
    if abs(frames - samples / hop) > tolerance:
        raise AudioError(f"{path}: {frames} frames, but its audio has {samples} samples = {samples / hop:.1f} "
                         f"frames of {hop}: more than {tolerance} frames apart (data.mel_tolerance_frames)")
    return min(frames, samples // hop)


class MelPairDataset(AudioDataset):
    """AudioDataset items with `mel`: the TTS model's frames for the same stretch of the audio."""

    def __init__(self, files: Sequence[Path], mels: Sequence[Path], num_mels: int, tolerance: int,
                 sampling_rate: int, segment_size: int | None = None, hop_size: int = 256, train: bool = True,
                 seed: int = 0) -> None:
        super().__init__(files, sampling_rate, segment_size, hop_size, train, seed)
        self.mels, self.num_mels, self.tolerance = [Path(m) for m in mels], num_mels, tolerance

    def load(self, index: int) -> tuple[Tensor, Tensor]:
        audio = super().load(index)
        mel = load_mel(self.mels[index], self.num_mels)
        frames = usable_frames(self.mels[index], tuple(mel.shape), audio.numel(), self.num_mels, self.hop_size,
                               self.tolerance)
        return audio[: frames * self.hop_size], mel[:, :frames]

    def item(self, index: int, loaded: tuple[Tensor, Tensor]) -> dict:
        audio, mel = loaded
        hop, path = self.hop_size, str(self.files[index])
        if self.segment_size is None:
            return {"audio": audio.clone(), "mel": mel.clone(), "path": path}
        per_segment = self.segment_size // hop
        frames = mel.shape[1]
        start = 0
        if self.train and frames > per_segment:
            gen = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, index))
            start = int(torch.randint(0, frames - per_segment + 1, (1,), generator=gen))
        mel, audio = mel[:, start:start + per_segment], audio[start * hop:(start + per_segment) * hop]
        if mel.shape[1] < per_segment:  # a short file: silence after it, in both
            mel = torch.nn.functional.pad(mel, (0, per_segment - mel.shape[1]), value=SILENCE)
            audio = torch.nn.functional.pad(audio, (0, self.segment_size - audio.numel()))
        return {"audio": audio.clone(), "mel": mel.clone(), "path": path}


def build_mel_pairs(files: Sequence[str | Path], root: str | Path, mel_dir: str | Path, num_mels: int,
                    sampling_rate: int, segment_size: int | None, hop_size: int, train: bool = True, seed: int = 0,
                    tolerance: int = 2, name: str = "dataset") -> MelPairDataset:
    """A MelPairDataset of the files that have a matching mel; one warning per file skipped (no mel,
    other bands, lengths apart), then a count; a ValueError when none is left."""
    mel_dir = Path(mel_dir).expanduser()
    if not mel_dir.is_dir():
        raise FileNotFoundError(f"data.mel_dir={mel_dir} is not a folder")
    headers, broken = scan_audio_files(files, min_samples=hop_size, sampling_rate=sampling_rate)
    good, mels = [], []
    for h in headers:
        mel = mel_path(h.path, root, mel_dir)
        try:
            if mel is None:
                stem = mel_dir / Path(h.path).resolve().relative_to(Path(root).resolve()).with_suffix("")
                raise AudioError(f"no mel file {stem}{' or '.join(MEL_SUFFIXES)}")
            samples = h.frames * sampling_rate // h.sampling_rate
            usable_frames(mel, load_mel(mel, num_mels, shape_only=True), samples, num_mels, hop_size, tolerance)
        except AudioError as err:
            broken.append((h.path, str(err)))
            continue
        good.append(h.path)
        mels.append(mel)
    for path, reason in broken:
        log.warning("%s: skipping %s: %s", name, path, reason)
    if broken:
        log.warning("%s: skipped %d of %d files (broken, or without a matching mel in %s); %d left", name,
                    len(broken), len(files), mel_dir, len(good))
    if not good:
        shown = "; ".join(f"{p}: {r}" for p, r in broken[:3])
        raise ValueError(f"{name}: no audio file has a usable mel in {mel_dir} ({shown})")
    return MelPairDataset(good, mels, num_mels, tolerance, sampling_rate, segment_size, hop_size, train, seed)
