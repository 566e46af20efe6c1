"""Plain-PyTorch Snake / SnakeBeta: the CPU path, the double-backward path and the test oracle.

The forward is written in BigVGAN's exact operation order (`x + 1/(b + 1e-9) * sin(αx)²`), so fp32
checkpoints reproduce bit for bit. Arithmetic happens in fp32 (or fp64 for fp64 inputs).
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-9  # BigVGAN's guard against division by zero in 1/α and 1/β


def compute_dtype(x: Tensor) -> torch.dtype:
    """fp64 stays fp64; everything else is computed in fp32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def broadcast_channel(p: Tensor, x: Tensor, dim: int) -> Tensor:
    """Reshape a per-channel vector of shape (C,) so that it broadcasts along `x`'s axis `dim`."""
    shape = [1] * x.ndim
    shape[dim] = p.numel()
    return p.reshape(shape)


def per_channel_sum(t: Tensor, dim: int) -> Tensor:
    """Sum over every axis but `dim` (a 1-D tensor is returned as it is)."""
    others = [d for d in range(t.ndim) if d != dim % t.ndim]
    return t.sum(others) if others else t


def _params(x: Tensor, alpha: Tensor, beta: Tensor | None, dim: int, logscale: bool):
    dt = compute_dtype(x)
    a = broadcast_channel(alpha.to(dt), x, dim)
    b = a if beta is None else broadcast_channel(beta.to(dt), x, dim)
    if logscale:
        a = torch.exp(a)
        b = a if beta is None else torch.exp(b)
    return a, b


def snake(x: Tensor, alpha: Tensor, beta: Tensor | None, dim: int, logscale: bool) -> Tensor:
    """y = x + sin²(αx)/(β + 1e-9), with β = α when `beta` is None (Snake); output in x's dtype."""
    a, b = _params(x, alpha, beta, dim, logscale)
    xc = x.to(a.dtype)
    return (xc + (1.0 / (b + EPS)) * torch.pow(torch.sin(xc * a), 2)).to(x.dtype)


def snake_backward(
    grad: Tensor, x: Tensor, alpha: Tensor, beta: Tensor | None, dim: int, logscale: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Closed-form gradients (dx, dα, dβ) of `snake`; differentiable, so it serves double backward.

    dy/dx = 1 + α·sin(2αx)/(β+ε); dy/dα = x·sin(2αx)/(β+ε) (− sin²(αx)/(α+ε)² for Snake);
    dy/dβ = −sin²(αx)/(β+ε)². With `logscale` the stored parameter is log α, so dα is scaled by α.
    Parameter gradients are reduced in fp32 (fp64 for fp64 inputs) and cast to the parameter dtype.
    """
    a, b = _params(x, alpha, beta, dim, logscale)
    xc, g = x.to(a.dtype), grad.to(a.dtype)
    inv = 1.0 / (b + EPS)
    s = torch.sin(xc * a)
    sin2 = torch.sin(2.0 * xc * a)
    dx = (g * (1.0 + a * inv * sin2)).to(x.dtype)
    g_arg = per_channel_sum(g * xc * sin2, dim) * inv.reshape(-1)  # through sin(αx)
    g_den = -per_channel_sum(g * s * s, dim) * inv.reshape(-1) ** 2  # through 1/(b + ε)
    if beta is None:
        d_alpha, d_beta = g_arg + g_den, None
    else:
        d_alpha, d_beta = g_arg, g_den
    if logscale:
        d_alpha = d_alpha * a.reshape(-1)
        d_beta = None if d_beta is None else d_beta * b.reshape(-1)
    d_alpha = d_alpha.to(alpha.dtype)
    d_beta = None if d_beta is None else d_beta.to(beta.dtype)
    return dx, d_alpha, d_beta


# ---------------------------------------------------------------- anti-aliased activation

import math  # noqa: E402  (appended section: the anti-aliased activation's reference)

import torch.nn.functional as F  # noqa: E402


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


def anti_alias_output_length(length: int, up_ratio: int, down_ratio: int) -> int:
    """Samples out of `anti_alias_activation` for `length` samples in: ceil(length·up / down)."""
    return -(-length * up_ratio // down_ratio)


def upsample1d(x: Tensor, taps: Tensor, ratio: int) -> Tensor:
    """BigVGAN's UpSample1d on (B, C, T): replicate pad, ratio·conv_transpose1d, crop to T·ratio."""
    k = taps.numel()
    pad = k // ratio - 1
    crop_left = pad * ratio + (k - ratio) // 2
    crop_right = pad * ratio + (k - ratio + 1) // 2
    channels = x.shape[1]
    w = taps.reshape(1, 1, k).to(x.dtype).expand(channels, 1, k)
    y = ratio * F.conv_transpose1d(F.pad(x, (pad, pad), mode="replicate"), w, stride=ratio,
                                   groups=channels)
    return y[..., crop_left: y.shape[-1] - crop_right]


def lowpass_downsample1d(x: Tensor, taps: Tensor, ratio: int) -> Tensor:
    """BigVGAN's LowPassFilter1d (as used by DownSample1d) on (B, C, T): replicate pad, strided conv."""
    k = taps.numel()
    pad_left, pad_right = k // 2 - int(k % 2 == 0), k // 2
    channels = x.shape[1]
    w = taps.reshape(1, 1, k).to(x.dtype).expand(channels, 1, k)
    return F.conv1d(F.pad(x, (pad_left, pad_right), mode="replicate"), w, stride=ratio,
                    groups=channels)


def anti_alias_activation(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                          beta: Tensor | None, logscale: bool, up_ratio: int = 2,
                          down_ratio: int = 2) -> Tensor:
    """BigVGAN's Activation1d on (B, C, T): upsample → Snake/SnakeBeta (channel axis 1) → low-pass
    and downsample. Arithmetic in fp32 (fp64 for fp64 inputs), output in x's dtype."""
    xc = x.to(compute_dtype(x))
    u = upsample1d(xc, up_filter, up_ratio)
    a = snake(u, alpha, beta, 1, logscale)
    return lowpass_downsample1d(a, down_filter, down_ratio).to(x.dtype)


def replicate_pad_adjoint(grad: Tensor, left: int, right: int) -> Tensor:
    """Adjoint of replicate padding along the last axis: the gradient of the padded signal
    (length L + left + right) folded back onto the L samples (the pads add into the end samples)."""
    length = grad.shape[-1] - left - right
    if length == 1:
        return grad.sum(-1, keepdim=True)
    first = grad[..., : left + 1].sum(-1, keepdim=True)
    last = grad[..., left + length - 1:].sum(-1, keepdim=True)
    return torch.cat([first, grad[..., left + 1: left + length - 1], last], dim=-1)


def anti_alias_activation_backward(
    grad: Tensor, x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
    beta: Tensor | None, logscale: bool, up_ratio: int = 2, down_ratio: int = 2,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Closed-form gradients (dx, dα, dβ) of `anti_alias_activation` (dβ None for Snake).

    Each stage's adjoint in turn: strided convolution → transposed convolution, replicate padding
    → folding the pads onto the end samples, crop → zero padding, and Snake through
    `snake_backward`. Built from differentiable ops, so it also serves double backward.
    """
    dt = compute_dtype(x)
    xc, g = x.to(dt), grad.to(dt)
    channels, length = x.shape[1], x.shape[-1]
    # forward up to the activation's input (recomputed from x)
    u = upsample1d(xc, up_filter, up_ratio)
    # low-pass + downsample, transposed
    k_down = down_filter.numel()
    pad_left, pad_right = k_down // 2 - int(k_down % 2 == 0), k_down // 2
    w_down = down_filter.reshape(1, 1, k_down).to(dt).expand(channels, 1, k_down)
    d_padded = F.conv_transpose1d(g, w_down, stride=down_ratio, groups=channels)
    padded_length = u.shape[-1] + pad_left + pad_right
    d_padded = F.pad(d_padded, (0, padded_length - d_padded.shape[-1]))
    d_act = replicate_pad_adjoint(d_padded, pad_left, pad_right)
    # Snake / SnakeBeta
    d_u, d_alpha, d_beta = snake_backward(d_act, u, alpha, beta, 1, logscale)
    # upsample, transposed: crop → zero pad, ratio·conv_transpose → ratio·conv, pad → fold
    k_up = up_filter.numel()
    pad = k_up // up_ratio - 1
    crop_left = pad * up_ratio + (k_up - up_ratio) // 2
    crop_right = pad * up_ratio + (k_up - up_ratio + 1) // 2
    w_up = up_filter.reshape(1, 1, k_up).to(dt).expand(channels, 1, k_up)
    d_full = F.pad(up_ratio * d_u, (crop_left, crop_right))
    d_xp = F.conv1d(d_full, w_up, stride=up_ratio, groups=channels)
    dx = replicate_pad_adjoint(d_xp[..., : length + 2 * pad], pad, pad)
    return dx.to(x.dtype), d_alpha, d_beta
