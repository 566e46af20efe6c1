"""BigVGAN v2's training losses: multi-scale log-mel L1, feature matching, least-squares GAN."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..audio.mel import mel_filterbank, stft_magnitude

_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
_N_MELS = (5, 10, 20, 40, 80, 160, 320)


class _MelScale(nn.Module):
    """One resolution of the loss: centred STFT (hop = window / 4), |·|, mel filters (no log)."""

    def __init__(self, sampling_rate: int, window_length: int, n_mels: int, fmin: float,
                 fmax: float | None) -> None:
        super().__init__()
        self.window_length, self.hop_length = window_length, window_length // 4
        with warnings.catch_warnings():  # few-bin filters at small windows are empty, by design
            warnings.simplefilter("ignore", UserWarning)
            filters = mel_filterbank(sampling_rate, window_length, n_mels, fmin, fmax)
        self.register_buffer("filters", filters, persistent=False)
        window = torch.hann_window(window_length, dtype=torch.float64).float()  # = scipy's, rounded once
        self.register_buffer("window", window, persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        mag = stft_magnitude(wav, self.window_length, self.hop_length, self.window_length,
                             self.window.to(wav.dtype), center=True, eps=0.0)
        # (frames, freq) @ (freq, mels): BigVGAN's summation order, so the loss matches it bit for bit
        return torch.matmul(mag.transpose(-1, -2), self.filters.to(wav.dtype).T).transpose(-1, -2)


class MultiScaleMelSpectrogramLoss(nn.Module):
    """Σ over resolutions of log_weight · L1(log10 mel(x), log10 mel(y)), BigVGAN v2's mel loss.

    Each resolution: Hann window w, hop w/4, centred reflect-padded STFT, Slaney mel filters, mel
    clamped at clamp_eps and raised to `pow` before log10. mag_weight adds L1 between the linear mels
    (BigVGAN applies it to the log mels instead; its default 0 makes the two agree).
    """

    def __init__(
        self,
        sampling_rate: int,
        n_mels: Sequence[int] = _N_MELS,
        window_lengths: Sequence[int] = _WINDOWS,
        clamp_eps: float = 1e-5,
        mag_weight: float = 0.0,
        log_weight: float = 1.0,
        pow: float = 1.0,
        mel_fmin: Sequence[float] | None = None,
        mel_fmax: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__()
        n = len(window_lengths)
        mel_fmin = [0.0] * n if mel_fmin is None else list(mel_fmin)
        mel_fmax = [None] * n if mel_fmax is None else list(mel_fmax)
        if not len(n_mels) == n == len(mel_fmin) == len(mel_fmax):
            raise ValueError("n_mels, window_lengths, mel_fmin and mel_fmax need one entry per scale")
        self.sampling_rate = sampling_rate
        self.clamp_eps, self.mag_weight, self.log_weight, self.pow = clamp_eps, mag_weight, log_weight, pow
        self.scales = nn.ModuleList(
            _MelScale(sampling_rate, w, m, lo, hi)
            for w, m, lo, hi in zip(window_lengths, n_mels, mel_fmin, mel_fmax)
        )

    def _log10(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.log(mel.clamp(min=self.clamp_eps).pow(self.pow)) / math.log(10.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss between estimate x and reference y, both (B, 1, T) or (B, T): a scalar."""
        if x.shape != y.shape:
            raise ValueError(f"estimate {tuple(x.shape)} and reference {tuple(y.shape)} differ in shape")
        if x.dim() == 3:
            if x.shape[1] != 1:
                raise ValueError(f"expected mono audio (B, 1, T), got {tuple(x.shape)}")
            x, y = x.squeeze(1), y.squeeze(1)
        elif x.dim() != 2:
            raise ValueError(f"expected audio of shape (B, 1, T) or (B, T), got {tuple(x.shape)}")
        loss = x.new_zeros(())
        for scale in self.scales:
            mel_x, mel_y = scale(x), scale(y)
            loss = loss + self.log_weight * torch.mean(torch.abs(self._log10(mel_x) - self._log10(mel_y)))
            if self.mag_weight:
                loss = loss + self.mag_weight * torch.mean(torch.abs(mel_x - mel_y))
        return loss


class _MeanAbsDifference(torch.autograd.Function):
    """mean |a − b| keeping only the sign of a − b (int8) for backward, where `torch.abs` keeps the
    difference itself (4 bytes an element in fp32): the same values and gradients, bit for bit."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        difference = a - b
        ctx.save_for_backward(torch.sign(difference).to(torch.int8))
        ctx.numel, ctx.dtype = difference.numel(), difference.dtype
        return torch.mean(torch.abs(difference))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        (sign,) = ctx.saved_tensors
        grad_difference = (grad / ctx.numel) * sign.to(ctx.dtype)  # mean's, then abs's backward
        return (grad_difference if ctx.needs_input_grad[0] else None,
                -grad_difference if ctx.needs_input_grad[1] else None)


def mean_abs_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.mean(torch.abs(a − b)), keeping a quarter of the bytes for backward in fp32 (a half in
    bf16); tensors of different shapes or dtypes take the plain expression."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return torch.mean(torch.abs(a - b))
    return _MeanAbsDifference.apply(a, b)


def feature_loss(
    fmap_r: Sequence[Sequence[torch.Tensor]], fmap_g: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Feature matching: 2 · Σ over discriminators and layers of mean |real − generated|."""
    loss = 0.0
    for layers_r, layers_g in zip(fmap_r, fmap_g):
        for r, g in zip(layers_r, layers_g):
            loss = loss + mean_abs_difference(r, g)
    return loss * 2


def discriminator_loss(
    disc_real_outputs: Sequence[torch.Tensor], disc_generated_outputs: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Least-squares GAN loss of the discriminators: Σ mean((1 − D(real))²) + mean(D(fake)²).

    Returns (total, per-discriminator real terms, per-discriminator fake terms); the terms are
    detached 0-d tensors (BigVGAN returns them as floats, which costs a device sync each).
    """
    loss = 0.0
    r_losses, g_losses = [], []
    for dr, dg in zip(disc_real_outputs, disc_generated_outputs):
        r_loss = torch.mean((1 - dr) ** 2)
        g_loss = torch.mean(dg**2)
        loss = loss + r_loss + g_loss
        r_losses.append(r_loss.detach())
        g_losses.append(g_loss.detach())
    return loss, r_losses, g_losses


def generator_loss(disc_outputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Generator LS-GAN loss Σ mean((1 − D(fake))²), and the per-discriminator terms."""
    loss = 0.0
    gen_losses = []
    for dg in disc_outputs:
        term = torch.mean((1 - dg) ** 2)
        gen_losses.append(term)
        loss = loss + term
    return loss, gen_losses


Scorer = Callable[[torch.Tensor], tuple[torch.Tensor, Sequence[torch.Tensor]]]


def sub_discriminator_generator_losses(
    discriminate: Scorer, real: torch.Tensor, generated: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sub-discriminator's share of the generator loss: (LS-GAN mean((1 − D(fake))²), feature
    matching 2 · Σ_layers mean |real − generated|), the real features computed without a graph
    (they are constants for the generator). Summed over sub-discriminators these are
    `generator_loss` and `feature_loss` of the whole set."""
    with torch.no_grad():
        _, fmap_r = discriminate(real)
    score, fmap_g = discriminate(generated)
    return torch.mean((1 - score) ** 2), feature_loss([fmap_r], [fmap_g])
