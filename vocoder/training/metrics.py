"""Validation metrics: mel L1 and a multi-resolution STFT distance between two waveforms."""

from __future__ import annotations

import torch
from torch import Tensor

STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))  # (n_fft, hop, win)


def mel_l1(mel_real: Tensor, mel_fake: Tensor) -> float:
    """Mean absolute difference of log-mel spectrograms (cropped to the shorter one)."""
    frames = min(mel_real.shape[-1], mel_fake.shape[-1])
    return (mel_real[..., :frames] - mel_fake[..., :frames]).abs().mean().item()


def multi_resolution_stft_distance(real: Tensor, fake: Tensor) -> float:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes (lower is closer)."""
    n = min(real.shape[-1], fake.shape[-1])
    real, fake = real[..., :n].float(), fake[..., :n].float()
    total = 0.0
    for n_fft, hop, win in STFT_RESOLUTIONS:
        window = torch.hann_window(win, device=real.device)
        mags = [torch.stft(x.reshape(-1, n), n_fft, hop, win, window, return_complex=True).abs()
                for x in (real, fake)]
        converge = (mags[0] - mags[1]).norm() / mags[0].norm().clamp_min(1e-7)
        log_l1 = (mags[0].clamp_min(1e-7).log() - mags[1].clamp_min(1e-7).log()).abs().mean()
        total += (converge + log_l1).item()
    return total / len(STFT_RESOLUTIONS)
