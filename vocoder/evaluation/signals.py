"""What every metric shares: the UndefinedMetric error and turning a waveform into a 1-D float32 CPU tensor."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class UndefinedMetric(ValueError):
    """A metric that has no value for this pair (too short, no speech, ...); the message says why.
    `generated_at_fault`: the generated audio alone is why (silent, a constant envelope), so the
    evaluation scores it at the metric's worst value rather than leaving the file out of the mean."""

    def __init__(self, message: str, generated_at_fault: bool = False) -> None:
        super().__init__(message)
        self.generated_at_fault = generated_at_fault


def as_waveform(audio: Tensor | np.ndarray, name: str = "audio") -> Tensor:
    """(T,), (1, T) or (1, 1, T) samples → a (T,) float32 CPU tensor; anything else is a ValueError naming `name`."""
    wav = torch.as_tensor(audio).detach().to("cpu", torch.float32)
    if wav.ndim > 1 and all(d == 1 for d in wav.shape[:-1]):
        wav = wav.reshape(-1)
    if wav.ndim != 1:
        raise ValueError(f"{name}: expected mono audio of shape (samples,), found shape {tuple(wav.shape)}")
    if wav.numel() == 0:
        raise ValueError(f"{name}: has no samples")
    if not torch.isfinite(wav).all():
        raise ValueError(f"{name}: holds NaN or Inf samples")
    return wav


def trim_to_shorter(reference: Tensor, generated: Tensor) -> tuple[Tensor, Tensor]:
    """Both cut to the length of the shorter one (along the last axis)."""
    n = min(reference.shape[-1], generated.shape[-1])
    return reference[..., :n], generated[..., :n]
