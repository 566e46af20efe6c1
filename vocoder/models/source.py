"""A harmonic pitch source (NSF-style): sines at F0 and its harmonics where voiced, noise elsewhere.

Without one, a small generator trained briefly locks its harmonics to the mel's frame rate (a buzz
at multiples of sampling_rate / hop); with it, the harmonics follow the voice's pitch. F0 arrives per
mel frame and is interpolated linearly between frame centres (voicing is held for the frame); the
source's phase is the running sum of the per-sample steps F0/sampling_rate (`sample_steps`), which
chunked and streaming inference carry from window to window (`phase`, `first_sample`) to get the
audio of one pass: a window's steps equal the whole signal's except within a frame of its edges, so
a caller anchors the phase where they agree. At inference the noise is a fixed function of the
absolute sample index, the same however the signal is cut; in training it is fresh Gaussian noise
and each segment starts at a random phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# pitch_source settings (the generator's `pitch_source` argument) and their defaults
PITCH_SOURCE_DEFAULTS: dict[str, Any] = dict(
    sampling_rate=None,         # required: the audio's rate (the source's sines are made at it)
    harmonics=8,                # sines at F0·1 … F0·harmonics (those below Nyquist)
    sine_amplitude=0.1,
    voiced_noise=0.003,         # noise amplitude where voiced; unvoiced: sine_amplitude / 3
    predictor_channels=64,      # the pitch predictor (vocoder.models.pitch)
    predictor_layers=3,
    predictor_kernel_size=3,
    bins=96,
    f0_min=50.0,
    f0_max=600.0,
)


def pitch_source_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` completed with PITCH_SOURCE_DEFAULTS; a ValueError names unknown keys or a missing rate."""
    unknown = sorted(set(config) - set(PITCH_SOURCE_DEFAULTS))
    if unknown:
        raise ValueError(f"not pitch_source settings: {', '.join(unknown)} "
                         f"(it takes {', '.join(PITCH_SOURCE_DEFAULTS)})")
    full = {**PITCH_SOURCE_DEFAULTS, **config}
    if not isinstance(full["sampling_rate"], int) or isinstance(full["sampling_rate"], bool) \
            or full["sampling_rate"] < 1:
        raise ValueError(f"pitch_source.sampling_rate must be a positive integer (the audio's rate), "
                         f"got {full['sampling_rate']!r}")
    for key in ("harmonics", "predictor_channels", "bins"):
        if not isinstance(full[key], int) or isinstance(full[key], bool) or full[key] < 1:
            raise ValueError(f"pitch_source.{key} must be a positive integer, got {full[key]!r}")
    return {k: float(v) if k in ("sine_amplitude", "voiced_noise", "f0_min", "f0_max") else v
            for k, v in full.items()}


_MASK32 = 0xFFFFFFFF


def _mul32(x: Tensor, constant: int) -> Tensor:
    """x · constant mod 2³² for int64 x in [0, 2³²), without int64 overflow."""
    high = (x * (constant >> 16)) & 0xFFFF
    return ((high << 16) + x * (constant & 0xFFFF)) & _MASK32


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mix (lowbias32) of int64 values in [0, 2³²)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def index_noise(index: Tensor) -> Tensor:
    """Standard normal float32 values that depend only on the int64 `index` (Box–Muller on two hashes)."""
    low, high = index & _MASK32, (index >> 32) & _MASK32
    key = _hash32(low ^ _hash32(high ^ 0x9E3779B9))
    u1 = (_hash32(key ^ 0x68E31DA4).double() + 0.5) / 2**32
    u2 = (_hash32(key ^ 0xB5297A4D).double() + 0.5) / 2**32
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)).float()


def running_phase(start: Tensor | float, steps: Tensor) -> Tensor:
    """The phase (cycles, in [0, 1)) of every sample from the first one's and the per-sample steps."""
    return (start + torch.cumsum(steps, dim=-1) - steps) % 1.0


def rewind(phase: Tensor | float, steps: Tensor) -> Tensor:
    """The phase `steps` samples before a sample whose phase is `phase`."""
    return (phase - steps.sum(-1)) % 1.0


def advance(phase: Tensor | float, steps: Tensor) -> Tensor:
    """The phase `steps` samples after a sample whose phase is `phase`."""
    return (phase + steps.sum(-1)) % 1.0


class HarmonicSource(nn.Module):
    """F0 and voicing per frame (B, frames) → the excitation (B, 1, frames·hop), merged from
    `harmonics` sines (and noise) by a learnt linear layer and tanh."""

    def __init__(self, sampling_rate: int, hop: int, harmonics: int = 8, sine_amplitude: float = 0.1,
                 voiced_noise: float = 0.003) -> None:
        super().__init__()
        self.sampling_rate, self.hop, self.harmonics = int(sampling_rate), int(hop), int(harmonics)
        self.sine_amplitude, self.voiced_noise = float(sine_amplitude), float(voiced_noise)
        self.merge = nn.Linear(harmonics, 1)

    def sample_f0(self, f0: Tensor) -> Tensor:
        """(B, frames) F0 → (B, frames·hop) float64: linear between frame centres, held past the end ones."""
        return F.interpolate(f0.double()[:, None], scale_factor=self.hop, mode="linear", align_corners=False)[:, 0]

    def sample_steps(self, f0: Tensor) -> Tensor:
        """(B, frames) F0 → the phase step of each sample in cycles, (B, frames·hop) float64; the phase of
        sample t is the first sample's plus the steps of the samples before t."""
        return self.sample_f0(f0) / self.sampling_rate

    def forward(self, f0: Tensor, voiced: Tensor, phase: Tensor | None = None,
                first_sample: Tensor | None = None) -> Tensor:
        """`phase` (B,): cycles at the first sample (default: random in training, else 0);
        `first_sample` (B,) int64: the absolute index of the first sample, which the inference
        noise is a function of (default 0)."""
        batch, frames = f0.shape
        length = frames * self.hop
        f0_samples = self.sample_f0(f0)
        steps = f0_samples / self.sampling_rate
        if phase is None:
            phase = (torch.rand(batch, device=f0.device, dtype=torch.float64) if self.training
                     else torch.zeros(batch, device=f0.device, dtype=torch.float64))
        cycles = running_phase(phase.double()[:, None], steps)
        k = torch.arange(1, self.harmonics + 1, device=f0.device, dtype=torch.float64)
        dtype = self.merge.weight.dtype
        sines = torch.sin(2 * math.pi * ((cycles[..., None] * k) % 1.0)).to(dtype) * self.sine_amplitude
        sines = sines * (f0_samples[..., None] * k < self.sampling_rate / 2)
        v = voiced.to(dtype).repeat_interleave(self.hop, dim=-1)[..., None]
        if self.training:
            noise = torch.randn_like(sines)
        else:
            start = torch.zeros(batch, dtype=torch.int64, device=f0.device) if first_sample is None \
                else first_sample.to(device=f0.device, dtype=torch.int64).reshape(batch)
            t = start[:, None] + torch.arange(length, device=f0.device)
            noise = index_noise(t[..., None] * self.harmonics + torch.arange(self.harmonics, device=f0.device)).to(dtype)
        excitation = sines * v + noise * (v * self.voiced_noise + (1 - v) * self.sine_amplitude / 3)
        return torch.tanh(self.merge(excitation)).transpose(1, 2)


def source_downsampler(channels: int, stride: int) -> nn.Conv1d:
    """Brings the excitation (output rate) to a stage `stride` times slower with `channels` channels:
    a strided conv whose output has exactly length / stride samples."""
    if stride == 1:
        return nn.Conv1d(1, channels, 1)
    if stride % 2:
        return nn.Conv1d(1, channels, 2 * stride - 1, stride, padding=stride - 1)
    return nn.Conv1d(1, channels, 2 * stride, stride, padding=stride // 2)
