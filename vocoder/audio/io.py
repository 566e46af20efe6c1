"""Audio file reading (soundfile; resampled and mixed down as asked, and saying so) and atomic wav writing."""

from __future__ import annotations

import io
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from ..atomic import atomic_write

PCM16_SCALE = 32767.0  # BigVGAN's MAX_WAV_VALUE: full scale maps to ±32767, never to -32768
MIN_SAMPLING_RATE = 1000  # Hz; a file declaring less has a damaged header (speech needs several kHz)
MAX_AUDIO_SECONDS = 4 * 3600  # one file read whole: longer is refused (a damaged header, or split it first)
MAX_RESAMPLING_FILTER = 64 * 2**20  # filter taps torchaudio's resampler may build (256 MiB of float32)
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_SUBTYPES = ("PCM_16", "FLOAT")


class AudioError(ValueError):
    """An audio file that cannot be used: the message names the file and the problem."""


@dataclass(frozen=True)
class AudioInfo:
    """What `load_audio` found in a file and what it did to it."""

    path: str
    sampling_rate: int  # of the returned samples
    original_sampling_rate: int  # of the file
    channels: int  # in the file
    num_samples: int  # returned, per channel
    resampled: bool
    mixed_down: bool
    warnings: tuple[str, ...] = ()  # problems the file has that did not stop it being read (truncation)

    @property
    def notes(self) -> list[str]:
        """Human-readable lines for what was changed (empty when the file was used as it is)."""
        out = []
        if self.mixed_down:
            out.append(f"{self.path}: mixed {self.channels} channels down to mono")
        if self.resampled:
            out.append(
                f"{self.path}: resampled from {self.original_sampling_rate} Hz "
                f"to {self.sampling_rate} Hz"
            )
        return out


def check_sampling_rate(value: object, name: str = "sampling_rate") -> int:
    """`value` as an int number of Hz, at least MIN_SAMPLING_RATE; a ValueError naming `name` for
    anything else (0, negative, 24000.5, True, a string)."""
    integral = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, bool) or not integral:
        raise ValueError(f"{name} must be a positive integer (Hz), got {value!r}")
    if int(value) < MIN_SAMPLING_RATE:
        raise ValueError(f"{name} must be a positive integer of at least {MIN_SAMPLING_RATE} Hz, got {value!r}")
    return int(value)


def resampling_filter_size(orig_sr: int, new_sr: int) -> int:
    """Taps of the filter bank torchaudio builds to resample orig_sr → new_sr: it grows with the two
    rates divided by their greatest common divisor (small for 16/22.05/24/44.1/48 kHz, huge for
    rates that share no factor, such as 44101 and 24000)."""
    divisor = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // divisor, int(new_sr) // divisor
    width = math.ceil(6 * orig / (min(orig, new) * 0.99))  # torchaudio's default lowpass_filter_width, rolloff
    return new * (orig + 2 * width)


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling along the last axis (torchaudio's windowed sinc); a no-op at equal rates.
    A ValueError for a pair of rates whose filter would exceed MAX_RESAMPLING_FILTER taps."""
    if orig_sr == new_sr:
        return wav
    taps = resampling_filter_size(orig_sr, new_sr)
    if taps > MAX_RESAMPLING_FILTER:
        raise ValueError(f"resampling {orig_sr} Hz to {new_sr} Hz needs a filter of {taps * 4 / 2**30:.1f} GiB "
                         f"(the rates share no common factor); resample the audio to a usual rate first")
    return AF.resample(wav, int(orig_sr), int(new_sr))


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.3g} hours" if seconds >= 3600 else f"{seconds:.3g} s"


def rate_problem(file_sr: int, frames: int, sampling_rate: int, max_seconds: float = MAX_AUDIO_SECONDS) -> str | None:
    """Why a file of `frames` frames at `file_sr` (its header's values) cannot be read at `sampling_rate`,
    or None: one check for `load_audio` and the scans that vet files from their headers."""
    if file_sr < MIN_SAMPLING_RATE:
        return (f"its header declares a sample rate of {file_sr} Hz, below {MIN_SAMPLING_RATE} Hz: a damaged "
                "header or not audio")
    seconds = frames / file_sr
    if seconds > max_seconds and frames < 2**60:  # libsndfile gives 2^63 - 1 frames when it cannot tell
        return (f"{_duration(seconds)} of audio at its declared {file_sr} Hz, over the limit of "
                f"{_duration(max_seconds)} for one file (a damaged header, or split the file)")
    if file_sr != sampling_rate and resampling_filter_size(file_sr, sampling_rate) > MAX_RESAMPLING_FILTER:
        return (f"its sample rate {file_sr} Hz shares no common factor with {sampling_rate} Hz, so resampling "
                "it would need gigabytes; a damaged header, or resample it to a usual rate first")
    return None


def _truncation(name: str, log: str, frames: int, sampling_rate: int) -> str | None:
    """A warning when libsndfile's log says a WAV's data chunk is longer than the file (cut short)."""
    data = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", log, re.MULTILINE)
    if data is None or int(data[1]) <= int(data[2]):
        return None
    align = re.search(r"Block Align\s*:\s*(\d+)", log)
    if align is None or int(align[1]) < 1:
        return (f"{name}: truncated file? its header declares {data[1]} bytes of audio data, "
                f"the file holds {data[2]}; using the {frames} frames present")
    declared = int(data[1]) // int(align[1])
    return (f"{name}: truncated file? its header declares {declared} frames "
            f"({declared / sampling_rate:.2f} s), the file holds {frames} ({frames / sampling_rate:.2f} s); "
            "using what is there")


def load_audio(
    path: str | os.PathLike, sampling_rate: int, mono: bool = True, max_seconds: float = MAX_AUDIO_SECONDS
) -> tuple[torch.Tensor, AudioInfo]:
    """Read wav/flac/ogg as float32 in [-1, 1] at sampling_rate: (T,) when mono, else (C, T).

    Raises FileNotFoundError for a missing file and AudioError for one that is unreadable, empty
    or holds NaN/Inf samples, and before reading its samples for one whose header declares a rate
    below MIN_SAMPLING_RATE or more than `max_seconds` of audio; every message names the file. A
    WAV whose header declares more data than the file holds (cut short by a crash or a full disk)
    is read as far as it goes, with a line in `AudioInfo.warnings`.
    """
    sampling_rate = check_sampling_rate(sampling_rate)
    name = os.fspath(path)
    p = Path(name)
    if not p.exists():
        raise FileNotFoundError(f"{name}: audio file not found")
    if p.is_dir():
        raise AudioError(f"{name}: is a directory, not an audio file")
    try:
        with sf.SoundFile(name) as f:
            problem = rate_problem(f.samplerate, f.frames, sampling_rate, max_seconds)
            if problem is None:
                data, file_sr, log = f.read(dtype="float32", always_2d=True), f.samplerate, f.extra_info
    except Exception as err:  # libsndfile's errors vary by format; keep its reason
        raise AudioError(f"{name}: cannot read audio ({err})") from err
    if problem is not None:
        raise AudioError(f"{name}: {problem}")
    frames, channels = data.shape
    truncated = _truncation(name, log, frames, file_sr)
    if frames == 0:
        raise AudioError(f"{name}: contains no audio samples (zero length)")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise AudioError(
            f"{name}: {bad} of {data.size} samples are NaN or Inf; the file is corrupt or was "
            "written from a diverged model"
        )
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # (C, T)
    mixed_down = mono and channels > 1
    if mono:
        wav = wav.mean(dim=0)
    wav = resample(wav, file_sr, int(sampling_rate)).contiguous()
    info = AudioInfo(
        path=name,
        sampling_rate=int(sampling_rate),
        original_sampling_rate=int(file_sr),
        channels=channels,
        num_samples=wav.shape[-1],
        resampled=file_sr != sampling_rate,
        mixed_down=mixed_down,
        warnings=(truncated,) if truncated else (),
    )
    return wav, info


# integer PCM → float in [-1, 1), as soundfile reads it: divide by 2^(bits-1); uint8 is offset by 128
PCM_TYPES = {torch.int16: (0, 32768.0), torch.int32: (0, 2147483648.0), torch.int8: (0, 128.0),
             torch.uint8: (128, 128.0)}


def not_a_tensor(value: object, what: str, expected: str = "a torch.Tensor") -> TypeError:
    """The TypeError for a `value` that is not a tensor: what it is, what is accepted, how to convert."""
    kind = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
    hint = " (torch.from_numpy converts it)" if type(value).__module__ == "numpy" else (
        " (torch.tensor converts it)" if isinstance(value, (list, tuple)) else "")
    return TypeError(f"{what}: expected {expected}, got a {kind}{hint}")


def check_audio_layout(wav: torch.Tensor) -> None:
    """A ValueError for audio that is not (samples,) or (channels, samples), with a hint for soundfile's
    (samples, channels) layout."""
    if wav.ndim not in (1, 2) or wav.shape[-1] == 0:
        raise ValueError(f"expected audio of shape (samples,) or (channels, samples), found {tuple(wav.shape)}")
    if wav.ndim == 2 and wav.shape[0] > wav.shape[1]:
        raise ValueError(f"expected audio of shape (channels, samples), found {tuple(wav.shape)}: more channels "
                         "than samples looks like soundfile's (samples, channels) layout; pass wav.T")


def pcm_to_float(wav: torch.Tensor, what: str = "audio") -> torch.Tensor:
    """Float audio as it is (as float32); integer PCM (int16, int32, int8, uint8) scaled to [-1, 1]
    the way soundfile reads it. Other types (int64, bool, complex) and non-tensors: a TypeError."""
    if not isinstance(wav, torch.Tensor):
        raise not_a_tensor(wav, what)
    if wav.is_floating_point():
        return wav.float()
    if wav.dtype not in PCM_TYPES:
        raise TypeError(f"{what}: expected float samples in [-1, 1] or integer PCM (int16, int32, int8, "
                        f"uint8), got {wav.dtype}")
    offset, scale = PCM_TYPES[wav.dtype]
    return (wav.float() - offset) / scale


def _to_numpy(wav: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    """(T,) or (C, T) samples → float32 array of shape (T, C) for soundfile."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().to("cpu", torch.float32).numpy()
    arr = np.asarray(wav, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim == 2:
        arr = arr.T
    else:
        raise ValueError(f"{name}: expected audio of shape (T,) or (C, T), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: refusing to write zero-length audio")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: refusing to write audio with NaN or Inf samples")
    return arr


def save_audio(
    path: str | os.PathLike,
    wav: torch.Tensor | np.ndarray,
    sampling_rate: int,
    subtype: str = "PCM_16",
    overwrite: bool = False,
    software: str | None = None,
) -> Path:
    """Write (T,) or (C, T) audio clipped to [-1, 1] as 16-bit PCM (or FLOAT) wav, atomically.

    The file appears complete or not at all (`vocoder.atomic.atomic_write`: temp file, fsync,
    rename; mode 0o666 less the umask); an existing file is kept unless overwrite=True, also one that
    another process creates meanwhile (FileExistsError). `software`: the file's software tag (what
    wrote it), read back by `audio_software`. Errors name the file; a full disk is an OSError with
    errno ENOSPC, and nothing is left behind.
    """
    name = os.fspath(path)
    p = Path(name)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"{name}: can write {sorted(_WRITE_FORMATS)} files only")
    if subtype not in _SUBTYPES:
        raise ValueError(f"{name}: subtype must be one of {_SUBTYPES}, got {subtype!r}")
    if fmt == "FLAC" and subtype == "FLOAT":
        raise ValueError(f"{name}: FLAC holds integer samples only; use PCM_16 or a .wav path")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{name}: already exists; pass overwrite=True to replace it")
    arr = np.clip(_to_numpy(wav, name), -1.0, 1.0)
    if subtype == "PCM_16":
        arr = np.round(arr * PCM16_SCALE).astype(np.int16)
    # encoded in memory first: an error writing the file (ENOSPC) then reaches us with its errno,
    # instead of being swallowed inside libsndfile's write callback (a bare AssertionError)
    encoded = io.BytesIO()
    with sf.SoundFile(encoded, "w", int(sampling_rate), arr.shape[1], subtype, format=fmt) as out:
        if software:
            out.software = software  # before the samples: WAV's INFO chunk is written with the header
        out.write(arr)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(p, lambda f: f.write(encoded.getbuffer()), replace=overwrite)
    except OSError as err:
        raise OSError(err.errno, f"{name}: {err.strerror or err}") from err
    return p


def audio_software(path: str | os.PathLike) -> str:
    """The software tag of an audio file (what `save_audio(software=...)` wrote), '' when it has none
    or cannot be read."""
    try:
        with sf.SoundFile(os.fspath(path)) as f:
            return f.software or ""
    except Exception:  # unreadable, not audio, gone: it carries no tag
        return ""
