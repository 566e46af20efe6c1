"""Snake's per-channel parameters on both sides of a fused kernel, shared by the Snake and the
anti-aliased ops: α and 1/(β + ε) loaded inside a kernel, and the backward kernels' per-program
partial sums turned into dα, dβ in two launches (one reduction, one small kernel for the closed
form) instead of the dozen that the reduction and formula took as separate torch ops."""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from .reference import EPS

_EPS = tl.constexpr(EPS)  # a Triton kernel reads module constants only as constexpr


@triton.jit
def channel_params(a_ptr, b_ptr, c, HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr):
    """α and 1/(β + ε) for channel(s) `c`, in fp32 (β = α for Snake; exp of both if LOGSCALE)."""
    alpha = tl.load(a_ptr + c).to(tl.float32)
    if HAS_BETA:
        beta = tl.load(b_ptr + c).to(tl.float32)
    else:
        beta = alpha
    if LOGSCALE:
        alpha = tl.exp(alpha)
        beta = tl.exp(beta)
    return alpha, 1.0 / (beta + _EPS)


def partial_sums(outer: int, channels: int, n: int, device: torch.device) -> Tensor:
    """Room for a backward kernel's per-program partial sums: (2, outer, C, n) fp32, [0] the sums of
    g·x·sin(2αx) and [1] those of g·sin²(αx), channel on axis 2; each half is contiguous."""
    return torch.empty((2, outer, channels, n), dtype=torch.float32, device=device)


@triton.jit
def _parameter_grads(sums_ptr, a_ptr, b_ptr, da_ptr, db_ptr, C,
                     HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr, BLOCK: tl.constexpr):
    """dα (and dβ) per channel from the per-channel sums (2, C): the closed form of the derivative."""
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = c < C
    c = tl.where(inside, c, 0)
    alpha, inv = channel_params(a_ptr, b_ptr, c, HAS_BETA, LOGSCALE)
    g_arg = tl.load(sums_ptr + c) * inv
    g_den = -tl.load(sums_ptr + C + c) * inv * inv
    if HAS_BETA:
        d_alpha = g_arg
        d_beta = g_den
        if LOGSCALE:
            d_alpha = d_alpha * alpha
            d_beta = d_beta * tl.exp(tl.load(b_ptr + c).to(tl.float32))
        tl.store(db_ptr + c, d_beta.to(db_ptr.dtype.element_ty), mask=inside)
    else:
        d_alpha = g_arg + g_den
        if LOGSCALE:
            d_alpha = d_alpha * alpha
    tl.store(da_ptr + c, d_alpha.to(da_ptr.dtype.element_ty), mask=inside)


def parameter_grads(partials: Tensor, alpha: Tensor, beta: Optional[Tensor], logscale: bool,
                    block: int = 128) -> tuple[Tensor, Tensor]:
    """`partial_sums` filled by a backward kernel → (dα, dβ) in the parameters' dtypes (dβ empty for
    Snake). Bitwise reproducible: the reduction runs in a fixed order."""
    channels = partials.shape[2]
    sums = partials.sum((1, 3))  # (2, C): one reduction for both sums
    d_alpha = torch.empty_like(alpha)
    d_beta = alpha.new_empty(0) if beta is None else torch.empty_like(beta)
    if channels:
        _parameter_grads[(triton.cdiv(channels, block),)](
            sums, alpha, alpha if beta is None else beta, d_alpha, d_alpha if beta is None else d_beta,
            channels, HAS_BETA=beta is not None, LOGSCALE=logscale, BLOCK=block)
    return d_alpha, d_beta
