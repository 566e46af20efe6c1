"""Teacher-forced pairs (`data.mel_dir`, NVIDIA's --input_mels_dir with --fine_tuning): each audio file with
the mel a TTS model made of it, matched by relative path (`mel_dir/<path under root>.npy` or `.pt`, shape
[num_mels, frames]); segments cut at the same place in both. A pair whose lengths disagree by up to
`tolerance` frames is trimmed to the shorter; one that disagrees by more, or has the wrong number of
bands, or no mel file, is reported per file and skipped (at start-up, and mid-run as a bad file)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..audio.io import AudioError
from ..audio.mel import LOG_CLAMP
from .dataset import AudioDataset, item_seed, shortest_usable
from .files import scan_audio_files
from .mel_files import MEL_SUFFIXES, read_mel_file, read_mel_header

log = logging.getLogger(__name__)
SILENCE = math.log(LOG_CLAMP)  # the mel of silence: what short segments are padded with


def _under(path: Path, root: Path) -> Path:
    """`path` relative to `root` as written, `.` and `..` resolved but links not followed (a linked
    file under root keeps its own name); failing that, with links followed on both sides."""
    try:
        return Path(os.path.normpath(Path(path).absolute())).relative_to(os.path.normpath(Path(root).absolute()))
    except ValueError:
        pass
    try:
        return Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        raise AudioError(f"{path} is not under data.root={root}, so data.mel_dir holds no mel for it") from None


def mel_stem(audio: Path, root: Path, mel_dir: Path) -> Path:
    """Where the mel of `audio` lies in `mel_dir`, without its suffix (its path under `root`)."""
    return mel_dir / _under(audio, root).with_suffix("")


def mel_path(audio: Path, root: Path, mel_dir: Path) -> Path | None:
    """The mel file of `audio` (its path under `root`, suffix replaced), or None."""
    stem = mel_stem(audio, root, mel_dir)
    found = [stem.with_name(stem.name + suffix) for suffix in MEL_SUFFIXES]
    return next((p for p in found if p.is_file()), None)


def integer_mel(path: Path, dtype: str) -> AudioError:
    return AudioError(f"{path}: a mel of integers ({dtype}); a mel holds floating-point log-magnitudes")


def load_mel(path: Path, num_mels: int) -> Tensor:
    """`read_mel_file` as float32, checked as audio is (floating point, finite values); its errors as
    AudioError naming the file (a bad file of the training set)."""
    try:
        mel = read_mel_file(path, num_mels)
    except ValueError as err:
        raise AudioError(str(err)) from err
    if not mel.is_floating_point():
        raise integer_mel(path, str(mel.dtype).replace("torch.", ""))
    bad = int((~torch.isfinite(mel)).sum())
    if bad:
        raise AudioError(f"{path}: {bad} of {mel.numel()} mel values are NaN or Inf")
    return mel.float()


def mel_shape(path: Path, num_mels: int) -> tuple[int, ...]:
    """The shape of a mel file from its header, refusing integer mels; AudioError naming the file."""
    try:
        shape, dtype, floating = read_mel_header(path, num_mels)
    except ValueError as err:
        raise AudioError(str(err)) from err
    if not floating:
        raise integer_mel(path, dtype)
    return shape


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
                    tolerance: int = 2, name: str = "dataset", n_fft: int | None = None) -> MelPairDataset:
    """A MelPairDataset of the files that have a matching mel; one warning per file skipped (no mel,
    other bands, lengths apart), then a count; a ValueError when none is left."""
    mel_dir = Path(mel_dir).expanduser()
    if not mel_dir.is_dir():
        raise FileNotFoundError(f"data.mel_dir={mel_dir} is not a folder")
    need, needed_for = shortest_usable(segment_size, hop_size, n_fft)
    headers, broken = scan_audio_files(files, min_samples=need, sampling_rate=sampling_rate, needed_for=needed_for)
    good, mels = [], []
    for h in headers:
        try:
            mel = mel_path(h.path, root, mel_dir)
            if mel is None:
                raise AudioError(f"no mel file {mel_stem(h.path, root, mel_dir)}{' or '.join(MEL_SUFFIXES)}")
            samples = h.frames * sampling_rate // h.sampling_rate
            usable_frames(mel, mel_shape(mel, num_mels), samples, num_mels, hop_size, tolerance)
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
