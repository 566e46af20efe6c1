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
