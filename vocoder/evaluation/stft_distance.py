"""M-STFT: the multi-resolution STFT distance of BigVGAN's validation (auraloss's MultiResolutionSTFTLoss, defaults).

Per resolution (n_fft, hop, window) = (1024, 120, 600), (2048, 240, 1200), (512, 50, 240):
|STFT| with a periodic Hann window, centred frames (reflect padding), magnitude
sqrt(max(re² + im², 1e-8)); distance = spectral convergence ‖|G| − |R|‖_F / ‖|R|‖_F + mean |ln|G| − ln|R||.
M-STFT is the mean of the three (0 for identical audio). R is the reference, G the generated audio.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .signals import UndefinedMetric, trim_to_shorter

STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))  # (n_fft, hop, window)
POWER_FLOOR = 1e-8  # re² + im² is clamped here before the square root (auraloss's eps)


def _magnitude(wav: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    window = torch.hann_window(win, device=wav.device, dtype=wav.dtype)
    spec = torch.stft(wav, n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
    return (spec.real.square() + spec.imag.square()).clamp_min(POWER_FLOOR).sqrt()


def multi_resolution_stft_distance(reference: Tensor, generated: Tensor) -> float:
    """M-STFT of `generated` against `reference`: (T,) or (B, T) each, trimmed to the shorter length.

    Raises UndefinedMetric for audio shorter than the largest FFT's reflect padding (1025 samples).
    """
    ref, gen = trim_to_shorter(reference.float(), generated.float())
    ref, gen = ref.reshape(-1, ref.shape[-1]), gen.reshape(-1, gen.shape[-1])
    if ref.shape[-1] <= max(n for n, _, _ in STFT_RESOLUTIONS) // 2:
        raise UndefinedMetric(f"M-STFT is undefined for {ref.shape[-1]} samples; it needs more than "
                              f"{max(n for n, _, _ in STFT_RESOLUTIONS) // 2}")
    total = 0.0
    for n_fft, hop, win in STFT_RESOLUTIONS:
        r, g = _magnitude(ref, n_fft, hop, win), _magnitude(gen, n_fft, hop, win)
        convergence = torch.linalg.norm(g - r) / torch.linalg.norm(r)
        log_distance = (g.log() - r.log()).abs().mean()
        total += float(convergence + log_distance)
    return total / len(STFT_RESOLUTIONS)
