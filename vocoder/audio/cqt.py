"""Constant-Q transform by octave-wise downsampling (Schörkhuber & Klapuri 2010) for BigVGAN v2's CQT discriminator.

Numerically the transform of nnAudio's `CQT2010v2` (librosa normalisation, complex output), so that
BigVGAN v2 discriminators trained with nnAudio see the same input; nnAudio is not needed at run time.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F
from torch import nn

_LOWPASS_TAPS = 256


def halfband_lowpass(cutoff: float, transition: float, taps: int = _LOWPASS_TAPS) -> np.ndarray:
    """FIR low-pass (firwin2), gain 1 below cutoff/(1+transition) and 0 above cutoff·(1+transition).

    Frequencies are fractions of the Nyquist frequency of the signal before downsampling.
    """
    edges = [0.0, cutoff / (1 + transition), cutoff * (1 + transition), 1.0]
    return scipy.signal.firwin2(taps, edges, [1.0, 1.0, 0.0, 0.0]).astype(np.float32)


def _early_downsample_count(
    sampling_rate: float, hop_length: int, fmax_top: float, q: float, n_octaves: int
) -> int:
    """How many times the input can be halved before the first octave (librosa's rule)."""
    cutoff = fmax_top * (1 + 0.5 * 1.5 / q)  # 1.5: the Hann window's bandwidth in bins
    nyquist = sampling_rate // 2
    by_band = max(0, int(np.ceil(np.log2(0.85 * nyquist / cutoff)) - 1) - 1)
    by_hop = max(0, int(np.ceil(np.log2(hop_length))) - n_octaves + 1)
    return min(by_band, by_hop)


def octave_kernels(
    q: float, sampling_rate: float, fmin: float, n_filters: int, bins_per_octave: int
) -> tuple[np.ndarray, int]:
    """Time-domain complex kernels of one octave, L1-normalised Hann-windowed complex exponentials.

    Row k has frequency fmin·2^(k/bins_per_octave) and length ceil(Q·sr/f), centred in a frame of
    the next power of two above the longest; returns (n_filters, frame) complex64 and the frame.
    """
    freqs = fmin * 2.0 ** (np.arange(n_filters) / float(bins_per_octave))
    lengths = np.ceil(q * sampling_rate / freqs)
    frame = int(2 ** np.ceil(np.log2(lengths.max())))
    kernels = np.zeros((n_filters, frame), dtype=np.complex64)
    for k, (freq, length) in enumerate(zip(freqs, lengths)):
        n = int(length)
        start = int(np.ceil(frame / 2.0 - length / 2.0)) - (n % 2)
        window = scipy.signal.get_window("hann", n, fftbins=True)
        t = np.arange(n) - np.ceil(length / 2.0)  # sample times, centred, earlier half one longer
        atom = window * np.exp(1j * 2 * np.pi * freq * t / sampling_rate) / length
        kernels[k, start : start + n] = atom / np.abs(atom).sum()
    return kernels, frame


class ConstantQTransform(nn.Module):
    """Complex CQT of (B, T), (B, 1, T) or (T,) audio → (B, n_bins, frames, 2) as (real, imag).

    One octave of kernels runs on the signal, which is then low-passed and halved for each lower
    octave; bins are scaled by sqrt(kernel length) as librosa does. Buffers keep nnAudio's names
    (including its spelling `lenghts`) so that BigVGAN discriminator state dicts load unchanged.
    """

    def __init__(
        self,
        sampling_rate: float,
        hop_length: int = 512,
        fmin: float = 32.70,
        n_bins: int = 84,
        bins_per_octave: int = 12,
        filter_scale: float = 1.0,
        pad_mode: str = "constant",
        early_downsample: bool = True,
    ) -> None:
        super().__init__()
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
        q = float(filter_scale) / (2 ** (1 / bins_per_octave) - 1)
        n_filters = min(bins_per_octave, n_bins)
        n_octaves = int(math.ceil(n_bins / bins_per_octave))
        top_bins = n_bins % bins_per_octave or bins_per_octave
        fmax_top = fmin * 2 ** (n_octaves - 1) * 2 ** ((top_bins - 1) / bins_per_octave)
        fmin_top = fmax_top / 2 ** (1 - 1 / bins_per_octave)
        if fmax_top > sampling_rate / 2:
            raise ValueError(
                f"the top CQT bin ({fmax_top:.1f} Hz) is above the Nyquist frequency "
                f"({sampling_rate / 2} Hz); use fewer bins or a higher rate"
            )
        self.n_bins, self.n_octaves, self.pad_mode = n_bins, n_octaves, pad_mode
        self.downsample_factor = 1
        if early_downsample:
            count = _early_downsample_count(sampling_rate, hop_length, fmax_top, q, n_octaves)
            self.downsample_factor = 2**count
        if self.downsample_factor > 1:
            hop_length //= self.downsample_factor
            sampling_rate = sampling_rate / float(self.downsample_factor)
            early = halfband_lowpass(1 / self.downsample_factor, 0.03)
            self.register_buffer("early_downsample_filter", torch.from_numpy(early)[None, None])
        if hop_length // 2 ** (n_octaves - 1) < 1:
            raise ValueError(
                f"hop_length {hop_length} cannot be halved {n_octaves - 1} times for {n_octaves} octaves"
            )
        self.hop_length = hop_length
        lowpass = halfband_lowpass(0.5, 0.001)
        self.register_buffer("lowpass_filter", torch.from_numpy(lowpass)[None, None])
        all_freqs = fmin * 2.0 ** (np.arange(n_bins) / float(bins_per_octave))
        lengths = np.ceil(q * sampling_rate / all_freqs)
        self.register_buffer("lenghts", torch.tensor(lengths).float())
        kernels, self.kernel_size = octave_kernels(q, sampling_rate, fmin_top, n_filters, bins_per_octave)
        self.register_buffer("cqt_kernels_real", torch.from_numpy(kernels.real.copy())[:, None])
        self.register_buffer("cqt_kernels_imag", torch.from_numpy(kernels.imag.copy())[:, None])

    def _octave(self, x: torch.Tensor, hop: int) -> torch.Tensor:
        half = self.kernel_size // 2
        if self.pad_mode == "constant":
            x = F.pad(x, (half, half))
        else:
            x = F.pad(x, (half, half), mode="reflect")
        real = F.conv1d(x, self.cqt_kernels_real, stride=hop)
        imag = -F.conv1d(x, self.cqt_kernels_imag, stride=hop)
        return torch.stack((real, imag), -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Audio → complex CQT, lowest bin first: (B, n_bins, frames, 2)."""
        if x.dim() == 1:
            x = x[None, None]
        elif x.dim() == 2:
            x = x[:, None]
        elif x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"expected audio of shape (T,), (B, T) or (B, 1, T); got {tuple(x.shape)}")
        pad = (_LOWPASS_TAPS - 1) // 2
        if self.downsample_factor > 1:
            x = F.conv1d(x, self.early_downsample_filter, stride=self.downsample_factor, padding=pad)
        hop = self.hop_length
        octaves = [self._octave(x, hop)]
        for _ in range(self.n_octaves - 1):
            hop //= 2
            x = F.conv1d(x, self.lowpass_filter, stride=2, padding=pad)
            octaves.insert(0, self._octave(x, hop))
        frames = min(o.shape[2] for o in octaves)
        cqt = torch.cat([o[:, :, :frames] for o in octaves], dim=1)[:, -self.n_bins :]
        if self.downsample_factor != 1:
            cqt = cqt * self.downsample_factor
        return cqt * torch.sqrt(self.lenghts).view(-1, 1, 1)
