"""Snake's per-channel parameters on both sides of a fused kernel, shared by the Snake and the
anti-aliased ops: α and 1/(β + ε) loaded inside a kernel, and per-channel partial sums turned into dα, dβ."""

from __future__ import annotations

from typing import Optional

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


def parameter_grads(sum_arg: Tensor, sum_den: Tensor, alpha: Tensor, beta: Optional[Tensor],
                    logscale: bool) -> tuple[Tensor, Tensor]:
    """Per-channel sums of g·x·sin(2αx) and g·sin²(αx) → (dα, dβ) in the parameters' dtypes
    (dβ empty for Snake)."""
    a = alpha.float().exp() if logscale else alpha.float()
    b = a if beta is None else (beta.float().exp() if logscale else beta.float())
    inv = 1.0 / (b + EPS)
    g_arg, g_den = sum_arg * inv, -sum_den * inv * inv
    if beta is None:
        d_alpha, d_beta = g_arg + g_den, None
    else:
        d_alpha, d_beta = g_arg, g_den
    if logscale:
        d_alpha = d_alpha * a
        d_beta = None if d_beta is None else d_beta * b
    no_beta = alpha.new_empty(0)
    return d_alpha.to(alpha.dtype), no_beta if d_beta is None else d_beta.to(beta.dtype)
