"""Log-mel spectrogram computed as BigVGAN computes it (Slaney mel filters, Hann window, ln)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

import librosa
import numpy as np
import torch
from torch import nn

# The settings of a mel spectrogram (MelSpectrogram's arguments, BigVGAN's config.json keys), as in
# vocoder/configs/mel/*.yaml and in checkpoints; `center` stays False, as BigVGAN's.
SETTINGS = ("sampling_rate", "num_mels", "n_fft", "hop_size", "win_size", "fmin", "fmax")
# Floors of the formula: magnitude = sqrt(re² + im² + MAGNITUDE_EPS), log(clamp(mel, LOG_CLAMP)).
MAGNITUDE_EPS = 1e-9
LOG_CLAMP = 1e-5


@functools.lru_cache(maxsize=64)
def _mel_filters_numpy(
    sampling_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float | None
) -> np.ndarray:
    filters = librosa.filters.mel(
        sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax
    )
    filters.setflags(write=False)
    return filters


def mel_filterbank(
    sampling_rate: int, n_fft: int, num_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> torch.Tensor:
    """Slaney-normalised mel filters from librosa, (num_mels, n_fft // 2 + 1) float32; fmax None is sr/2."""
    return torch.tensor(_mel_filters_numpy(sampling_rate, n_fft, num_mels, fmin, fmax))


def _as_batch(wav: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(T,), (B, T) or (B, 1, T) → (N, T) in a float dtype stft accepts, and the leading shape."""
    if wav.dim() == 3 and wav.shape[1] == 1:
        lead = (wav.shape[0],)
    elif wav.dim() in (1, 2):
        lead = tuple(wav.shape[:-1])
    else:
        raise ValueError(
            f"expected audio of shape (T,), (B, T) or (B, 1, T); got {tuple(wav.shape)}"
        )
    if wav.dtype != torch.float64:
        wav = wav.float()
    return wav.reshape(-1, wav.shape[-1]), lead


def num_frames(num_samples: int, n_fft: int, hop_size: int, center: bool = False) -> int:
    """Frames `stft_magnitude` gives for a signal of num_samples: T // hop when n_fft − hop is even."""
    pad = n_fft // 2 if center else (n_fft - hop_size) // 2
    return (num_samples + 2 * pad - n_fft) // hop_size + 1


def stft_min_samples(n_fft: int, hop_size: int, center: bool = False) -> int:
    """The fewest samples `stft_magnitude` takes (its reflect padding needs more than the pad)."""
    if center:
        return n_fft // 2 + 1
    pad = (n_fft - hop_size) // 2
    return max(pad + 1, n_fft - 2 * pad)


def stft_magnitude(
    wav: torch.Tensor,
    n_fft: int,
    hop_size: int,
    win_size: int,
    window: torch.Tensor,
    center: bool = False,
    eps: float = MAGNITUDE_EPS,
) -> torch.Tensor:
    """|STFT| of (N, T) audio, (N, n_fft // 2 + 1, frames).

    center=False: reflect-pad (n_fft − hop) // 2 on both sides, frames start at 0 (BigVGAN's mel);
    center=True: torch.stft's own centring. eps > 0: sqrt(re² + im² + eps); eps == 0: torch.abs.
    """
    min_len = stft_min_samples(n_fft, hop_size, center)
    pad = (n_fft - hop_size) // 2
    if wav.shape[-1] < min_len:
        raise ValueError(
            f"audio of {wav.shape[-1]} samples is too short for an STFT with n_fft={n_fft}, "
            f"hop={hop_size} (needs at least {min_len} samples)"
        )
    if not center:
        wav = torch.nn.functional.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(
        wav,
        n_fft,
        hop_length=hop_size,
        win_length=win_size,
        window=window,
        center=center,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    if eps > 0:
        return torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + eps)
    return spec.abs()


def _check_params(n_fft: int, hop_size: int, win_size: int, sampling_rate: int,
                  fmin: float, fmax: float | None) -> None:
    if min(n_fft, hop_size, win_size, sampling_rate) <= 0:
        raise ValueError("n_fft, hop_size, win_size and sampling_rate must be positive")
    if win_size > n_fft:
        raise ValueError(f"win_size ({win_size}) must not exceed n_fft ({n_fft})")
    top = sampling_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < top:
        raise ValueError(f"need 0 <= fmin < fmax; got fmin={fmin}, fmax={top}")


class MelSpectrogram(nn.Module):
    """BigVGAN's log-mel spectrogram as a module; filters and window are non-persistent buffers.

    Output frames: (T + 2·((n_fft − hop) // 2) − n_fft) // hop + 1, which is T // hop whenever
    n_fft − hop is even (every BigVGAN configuration); see `num_frames`.
    """

    def __init__(
        self,
        n_fft: int,
        num_mels: int,
        sampling_rate: int,
        hop_size: int,
        win_size: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        center: bool = False,
    ) -> None:
        super().__init__()
        _check_params(n_fft, hop_size, win_size, sampling_rate, fmin, fmax)
        self.n_fft, self.num_mels, self.sampling_rate = n_fft, num_mels, sampling_rate
        self.hop_size, self.win_size, self.fmin, self.fmax = hop_size, win_size, fmin, fmax
        self.center = center
        self.register_buffer(
            "mel_basis", mel_filterbank(sampling_rate, n_fft, num_mels, fmin, fmax), persistent=False
        )
        self.register_buffer("window", torch.hann_window(win_size), persistent=False)
        self._elsewhere: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def settings(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Mel settings with BigVGAN's keys (a vocoder/configs/mel/*.yaml) as a complete SETTINGS dict:
        fmin and fmax may be left out (their defaults); a ValueError names unknown or missing keys."""
        parameters = inspect.signature(cls.__init__).parameters
        unknown = sorted(set(config) - set(SETTINGS))
        missing = [k for k in SETTINGS if k not in config and parameters[k].default is inspect.Parameter.empty]
        problems = [f"{what} {', '.join(keys)}" for what, keys in (("unknown", unknown), ("missing", missing)) if keys]
        if problems:
            raise ValueError(f"mel settings: {'; '.join(problems)} (the keys are {', '.join(SETTINGS)})")
        return {k: config[k] if k in config else parameters[k].default for k in SETTINGS}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "MelSpectrogram":
        """Build from mel settings (see `settings`)."""
        return cls(**cls.settings(config))

    @property
    def config(self) -> dict[str, Any]:
        """The settings as a plain dict of SETTINGS keys (what a checkpoint records; from_config's input)."""
        return {key: getattr(self, key) for key in SETTINGS}

    def _buffers_for(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mel_basis.device == wav.device and self.mel_basis.dtype == wav.dtype:
            return self.mel_basis, self.window
        key = (wav.device, wav.dtype)
        if key not in self._elsewhere:  # input on another device than the module: cache a copy
            self._elsewhere[key] = (
                self.mel_basis.to(wav.device, wav.dtype),
                self.window.to(wav.device, wav.dtype),
            )
        return self._elsewhere[key]

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for num_samples of audio."""
        return num_frames(num_samples, self.n_fft, self.hop_size, self.center)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(T,), (B, T) or (B, 1, T) audio → (num_mels, F) or (B, num_mels, F) log-mel."""
        batch, lead = _as_batch(wav)
        filters, window = self._buffers_for(batch)
        mag = stft_magnitude(
            batch, self.n_fft, self.hop_size, self.win_size, window, center=self.center
        )
        mel = torch.log(torch.clamp(torch.matmul(filters, mag), min=LOG_CLAMP))
        return mel.reshape(*lead, *mel.shape[-2:])

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, num_mels={self.num_mels}, sampling_rate={self.sampling_rate}, "
            f"hop_size={self.hop_size}, win_size={self.win_size}, fmin={self.fmin}, fmax={self.fmax}"
        )


def mel_spectrogram(wav: torch.Tensor, n_fft: int, num_mels: int, sampling_rate: int, hop_size: int,
                    win_size: int, fmin: float, fmax: float | None = None, center: bool = False) -> torch.Tensor:
    """`MelSpectrogram(...)(wav)` in BigVGAN's functional spelling: (T,), (B, T) or (B, 1, T) audio →
    (num_mels, F) or (B, num_mels, F) log-mel."""
    return MelSpectrogram(n_fft, num_mels, sampling_rate, hop_size, win_size, fmin, fmax, center)(wav)
