"""The check every mel given for vocoding passes: shape, band count, frames, finite values."""

from __future__ import annotations

import torch
from torch import Tensor

from .io import not_a_tensor


def check_mel(mel: Tensor, num_mels: int, name: str = "mel") -> None:
    """Raise a ValueError naming `name` for a mel that is not (…, num_mels, frames ≥ 1) of finite values
    (a TypeError for one that is not a torch.Tensor)."""
    if not isinstance(mel, Tensor):
        raise not_a_tensor(mel, name, f"a torch.Tensor of shape [{num_mels}, frames]")
    if mel.ndim < 2:
        raise ValueError(f"{name}: expected a mel of shape [{num_mels}, frames], found shape {tuple(mel.shape)}")
    bands, frames = mel.shape[-2:]
    if bands != num_mels:
        hint = " (it looks transposed: [frames, bands])" if frames == num_mels else ""
        raise ValueError(f"{name}: expected {num_mels} mel bands, found {bands}{hint}; "
                         f"shape {tuple(mel.shape)}")
    if frames == 0:
        raise ValueError(f"{name}: the mel has no frames (empty)")
    if not mel.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point mel, found {mel.dtype}")
    bad = int((~torch.isfinite(mel)).sum())
    if bad:
        raise ValueError(f"{name}: {bad} of {mel.numel()} mel values are NaN or Inf")
