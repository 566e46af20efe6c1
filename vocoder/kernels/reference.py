"""Plain-PyTorch Snake / SnakeBeta and the anti-aliased activation: the CPU path, the double-backward
path, the layers' eager implementation and the test oracle.

The forward is written in BigVGAN's exact operation order (`x + 1/(b + 1e-9) * sin(αx)²`), so fp32
checkpoints reproduce bit for bit. Arithmetic happens in fp32 (or fp64 for fp64 inputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import filters

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


def anti_alias_activation(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                          beta: Tensor | None, logscale: bool, up_ratio: int = 2,
                          down_ratio: int = 2) -> Tensor:
    """BigVGAN's Activation1d on (B, C, T): upsample → Snake/SnakeBeta (channel axis 1) → low-pass
    and downsample. Arithmetic in fp32 (fp64 for fp64 inputs), output in x's dtype."""
    xc = x.to(compute_dtype(x))
    u = filters.upsample1d(xc, up_filter, up_ratio)
    a = snake(u, alpha, beta, 1, logscale)
    return filters.lowpass_downsample1d(a, down_filter, down_ratio).to(x.dtype)


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
    u = filters.upsample1d(xc, up_filter, up_ratio)
    # low-pass + downsample, transposed
    pad_left, pad_right = filters.lowpass_padding(down_filter.numel())
    w_down = filters.depthwise(down_filter, channels, dt)
    d_padded = F.conv_transpose1d(g, w_down, stride=down_ratio, groups=channels)
    padded_length = u.shape[-1] + pad_left + pad_right
    d_padded = F.pad(d_padded, (0, padded_length - d_padded.shape[-1]))
    d_act = replicate_pad_adjoint(d_padded, pad_left, pad_right)
    # Snake / SnakeBeta
    d_u, d_alpha, d_beta = snake_backward(d_act, u, alpha, beta, 1, logscale)
    # upsample, transposed: crop → zero pad, ratio·conv_transpose → ratio·conv, pad → fold
    pad, crop_left, crop_right = filters.upsample_padding(up_filter.numel(), up_ratio)
    w_up = filters.depthwise(up_filter, channels, dt)
    d_full = F.pad(up_ratio * d_u, (crop_left, crop_right))
    d_xp = F.conv1d(d_full, w_up, stride=up_ratio, groups=channels)
    dx = replicate_pad_adjoint(d_xp[..., : length + 2 * pad], pad, pad)
    return dx.to(x.dtype), d_alpha, d_beta
