"""BigVGAN's Kaiser-windowed sinc low-pass filter and the resamplers built from it, in plain PyTorch:
the one definition behind the layers' filter buffers, the reference and the fused op's fallback."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    """BigVGAN's low-pass filter, shape (1, 1, kernel_size): a Kaiser-windowed sinc summing to 1.

    The Kaiser β comes from Kaiser's formula for the attenuation A = 2.285·(half−1)·π·4·half_width
    + 7.95 dB; even sizes sample the sinc at half-integer times so the filter is symmetric.
    """
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half) + 0.5
    else:
        time = torch.arange(kernel_size) - half
    if cutoff == 0:
        taps = torch.zeros_like(time)
    else:
        taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
        taps /= taps.sum()
    return taps.view(1, 1, kernel_size)


def default_kernel_size(ratio: int) -> int:
    """BigVGAN's filter length for resampling by `ratio`: 6·ratio rounded down to an even number."""
    return int(6 * ratio // 2) * 2


def resampling_filter(ratio: int, kernel_size: int | None = None) -> Tensor:
    """The anti-aliasing filter of BigVGAN's UpSample1d / DownSample1d for `ratio`: cutoff 0.5/ratio,
    half-width 0.6/ratio, `kernel_size` taps (default `default_kernel_size(ratio)`)."""
    size = default_kernel_size(ratio) if kernel_size is None else kernel_size
    return kaiser_sinc_filter1d(cutoff=0.5 / ratio, half_width=0.6 / ratio, kernel_size=size)


def output_length(length: int, up_ratio: int, down_ratio: int) -> int:
    """Samples out of up ×up_ratio → down ÷down_ratio for `length` samples in: ceil(length·up / down)."""
    return -(-length * up_ratio // down_ratio)


def upsample_padding(kernel_size: int, ratio: int) -> tuple[int, int, int]:
    """(replicate pad on each side, crop left, crop right) of BigVGAN's UpSample1d."""
    pad = kernel_size // ratio - 1
    crop_left = pad * ratio + (kernel_size - ratio) // 2
    crop_right = pad * ratio + (kernel_size - ratio + 1) // 2
    return pad, crop_left, crop_right


def lowpass_padding(kernel_size: int) -> tuple[int, int]:
    """(left, right) replicate padding of BigVGAN's LowPassFilter1d."""
    return kernel_size // 2 - int(kernel_size % 2 == 0), kernel_size // 2


def depthwise(taps: Tensor, channels: int, dtype: torch.dtype) -> Tensor:
    """One filter as a (channels, 1, K) depthwise convolution weight."""
    k = taps.numel()
    return taps.reshape(1, 1, k).to(dtype).expand(channels, 1, k)


def upsample1d(x: Tensor, taps: Tensor, ratio: int) -> Tensor:
    """BigVGAN's UpSample1d on (B, C, T): replicate pad, ratio·conv_transpose1d, crop to T·ratio."""
    pad, crop_left, crop_right = upsample_padding(taps.numel(), ratio)
    channels = x.shape[1]
    y = ratio * F.conv_transpose1d(F.pad(x, (pad, pad), mode="replicate"),
                                   depthwise(taps, channels, x.dtype), stride=ratio, groups=channels)
    return y[..., crop_left: y.shape[-1] - crop_right]


def lowpass_downsample1d(x: Tensor, taps: Tensor, ratio: int) -> Tensor:
    """BigVGAN's LowPassFilter1d (as used by DownSample1d) on (B, C, T): replicate pad, strided conv."""
    channels = x.shape[1]
    return F.conv1d(F.pad(x, lowpass_padding(taps.numel()), mode="replicate"),
                    depthwise(taps, channels, x.dtype), stride=ratio, groups=channels)
