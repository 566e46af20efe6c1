"""Fused Snake / SnakeBeta: Triton forward and backward kernels, launchers, and the torch.library op.

y = x + sin²(αx)/(β + 1e-9) per channel (β = α for Snake), α and β optionally stored as logs.
The backward recomputes everything from x: the op saves x and its parameters, nothing else.
Two tilings cover every layout: ROWS when the axes after the channel axis hold many elements
((B, C, T) audio), COLUMNS when they hold few (channels-last (B, T, C) with dim=-1).
Per-channel parameter gradients are written as per-tile partial sums and reduced by torch in a
fixed order, so they are bitwise reproducible.
"""

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import reference
from .backend import eager_dispatch, use_triton
from .inputs import check_floating
from .layout import channel_layout, dense_like, restore, write_target

ROWS_MIN_INNER = 256  # below this many elements per (outer, channel) row, tile by columns
# (elements, warps) per program in the ROWS tiling, from `python -m vocoder.bench.snake_tiles` on an
# H100: every tile reads and writes at the copy floor in forward; backward (sin and cos per element)
# is fastest with small tiles in fp32 and 2048-element tiles in 16-bit types.
FWD_TILE = (2048, 4)
BWD_TILE = {torch.float32: (1024, 4), torch.float16: (2048, 8), torch.bfloat16: (2048, 8)}
COL_BLOCK_O, COL_BLOCK_K = 32, 128  # (outer × channel·inner) tile in the COLUMNS tiling


@triton.jit
def channel_params(a_ptr, b_ptr, c, HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr):
    """α and 1/(β + 1e-9) for channel(s) `c`, in fp32."""
    alpha = tl.load(a_ptr + c).to(tl.float32)
    if HAS_BETA:
        beta = tl.load(b_ptr + c).to(tl.float32)
    else:
        beta = alpha
    if LOGSCALE:
        alpha = tl.exp(alpha)
        beta = tl.exp(beta)
    return alpha, 1.0 / (beta + 1e-9)


@triton.jit
def _snake_fwd_rows(x_ptr, y_ptr, a_ptr, b_ptr, C, INNER, n_blocks,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    row = pid // n_blocks
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    offs = (pid % n_blocks) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < INNER
    base = row.to(tl.int64) * INNER
    x = tl.load(x_ptr + base + offs, mask=mask).to(tl.float32)
    s = tl.sin(x * alpha)
    y = x + inv * (s * s)
    tl.store(y_ptr + base + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _snake_bwd_rows(g_ptr, x_ptr, dx_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr, C, INNER, n_blocks,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    row = pid // n_blocks
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    offs = (pid % n_blocks) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < INNER
    base = row.to(tl.int64) * INNER
    x = tl.load(x_ptr + base + offs, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + base + offs, mask=mask).to(tl.float32)
    s = tl.sin(x * alpha)
    sin2 = 2.0 * s * tl.cos(x * alpha)
    dx = g * (1.0 + alpha * inv * sin2)
    tl.store(dx_ptr + base + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    # masked lanes load x = g = 0, so they add nothing to the partial sums
    tl.store(p_arg_ptr + pid, tl.sum(g * x * sin2, axis=0))
    tl.store(p_den_ptr + pid, tl.sum(g * s * s, axis=0))


@triton.jit
def _snake_fwd_cols(x_ptr, y_ptr, a_ptr, b_ptr, OUTER, K, INNER,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                    BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    cols = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    rows = tl.program_id(1).to(tl.int64) * BLOCK_O + tl.arange(0, BLOCK_O)
    col_ok = cols < K
    alpha, inv = channel_params(a_ptr, b_ptr, tl.where(col_ok, cols // INNER, 0), HAS_BETA, LOGSCALE)
    idx = rows[:, None] * K + cols[None, :]
    mask = (rows[:, None] < OUTER) & col_ok[None, :]
    x = tl.load(x_ptr + idx, mask=mask).to(tl.float32)
    s = tl.sin(x * alpha[None, :])
    y = x + inv[None, :] * (s * s)
    tl.store(y_ptr + idx, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _snake_bwd_cols(g_ptr, x_ptr, dx_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr, OUTER, K, INNER,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                    BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    cols = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    row_block = tl.program_id(1)
    rows = row_block.to(tl.int64) * BLOCK_O + tl.arange(0, BLOCK_O)
    col_ok = cols < K
    alpha, inv = channel_params(a_ptr, b_ptr, tl.where(col_ok, cols // INNER, 0), HAS_BETA, LOGSCALE)
    idx = rows[:, None] * K + cols[None, :]
    mask = (rows[:, None] < OUTER) & col_ok[None, :]
    x = tl.load(x_ptr + idx, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + idx, mask=mask).to(tl.float32)
    s = tl.sin(x * alpha[None, :])
    sin2 = 2.0 * s * tl.cos(x * alpha[None, :])
    dx = g * (1.0 + (alpha * inv)[None, :] * sin2)
    tl.store(dx_ptr + idx, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    p_idx = row_block.to(tl.int64) * K + cols
    tl.store(p_arg_ptr + p_idx, tl.sum(g * x * sin2, axis=0), mask=col_ok)
    tl.store(p_den_ptr + p_idx, tl.sum(g * s * s, axis=0), mask=col_ok)


def _launch_forward(x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int, logscale: bool) -> Tensor:
    layout = channel_layout(x, dim)
    out = torch.empty_like(x)
    target, in_place = write_target(out, layout, dim)
    xd, O, C, I = layout.dense, layout.outer, layout.channels, layout.inner
    alpha, b = alpha.contiguous(), (alpha if beta is None else beta).contiguous()
    flags = dict(HAS_BETA=beta is not None, LOGSCALE=logscale)
    if xd.numel() == 0:
        return out
    if I >= ROWS_MIN_INNER:
        block, warps = FWD_TILE
        n_blocks = triton.cdiv(I, block)
        _snake_fwd_rows[(O * C * n_blocks,)](xd, target, alpha, b, C, I, n_blocks, **flags,
                                             BLOCK=block, num_warps=warps)
    else:
        grid = (triton.cdiv(C * I, COL_BLOCK_K), triton.cdiv(O, COL_BLOCK_O))
        _snake_fwd_cols[grid](xd, target, alpha, b, O, C * I, I, **flags,
                              BLOCK_O=COL_BLOCK_O, BLOCK_K=COL_BLOCK_K, num_warps=4)
    if not in_place:
        out.copy_(restore(target, layout))
    return out


def _launch_backward(grad: Tensor, x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                     logscale: bool) -> tuple[Tensor, Tensor, Tensor]:
    layout = channel_layout(x, dim)
    gd = dense_like(grad, layout)
    dx = torch.empty_like(x)
    target, in_place = write_target(dx, layout, dim)
    xd, O, C, I = layout.dense, layout.outer, layout.channels, layout.inner
    alpha, b = alpha.contiguous(), (alpha if beta is None else beta).contiguous()
    flags = dict(HAS_BETA=beta is not None, LOGSCALE=logscale)
    if xd.numel() == 0:
        zeros = torch.zeros(C, dtype=torch.float32, device=x.device)
        return (dx, *parameter_grads(zeros, zeros, alpha, beta, logscale))
    if I >= ROWS_MIN_INNER:
        block, warps = BWD_TILE.get(x.dtype, BWD_TILE[torch.float32])
        n_blocks = triton.cdiv(I, block)
        p_arg = torch.empty((O, C, n_blocks), dtype=torch.float32, device=x.device)
        p_den = torch.empty_like(p_arg)
        _snake_bwd_rows[(O * C * n_blocks,)](gd, xd, target, alpha, b, p_arg, p_den, C, I, n_blocks,
                                             **flags, BLOCK=block, num_warps=warps)
        sum_arg, sum_den = p_arg.sum((0, 2)), p_den.sum((0, 2))
    else:
        n_row_blocks = triton.cdiv(O, COL_BLOCK_O)
        p_arg = torch.empty((n_row_blocks, C, I), dtype=torch.float32, device=x.device)
        p_den = torch.empty_like(p_arg)
        grid = (triton.cdiv(C * I, COL_BLOCK_K), n_row_blocks)
        _snake_bwd_cols[grid](gd, xd, target, alpha, b, p_arg, p_den, O, C * I, I, **flags,
                              BLOCK_O=COL_BLOCK_O, BLOCK_K=COL_BLOCK_K, num_warps=4)
        sum_arg, sum_den = p_arg.sum((0, 2)), p_den.sum((0, 2))
    if not in_place:
        dx.copy_(restore(target, layout))
    return (dx, *parameter_grads(sum_arg, sum_den, alpha, beta, logscale))


def parameter_grads(sum_arg: Tensor, sum_den: Tensor, alpha: Tensor, beta: Optional[Tensor],
                     logscale: bool) -> tuple[Tensor, Tensor]:
    """Per-channel sums of g·x·sin(2αx) and g·sin²(αx) → (dα, dβ) in the parameters' dtypes."""
    a = alpha.float().exp() if logscale else alpha.float()
    b = a if beta is None else (beta.float().exp() if logscale else beta.float())
    inv = 1.0 / (b + reference.EPS)
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


# ---------------------------------------------------------------- torch.library registration


def _forward(x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int, logscale: bool) -> Tensor:
    """The op's forward: the Triton kernel where it runs, else the reference."""
    if use_triton(x):
        return _launch_forward(x, alpha, beta, dim, logscale)
    y = reference.snake(x, alpha, beta, dim, logscale)
    return torch.empty_like(x).copy_(y)  # the layout the fake implementation promises


@torch.library.custom_op("vocoder::snake", mutates_args=())
def snake_op(x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int, logscale: bool) -> Tensor:
    """Snake (beta None) or SnakeBeta along axis `dim` of x."""
    return _forward(x, alpha, beta, dim, logscale)


@snake_op.register_fake
def _(x, alpha, beta, dim, logscale):
    return torch.empty_like(x)


def _backward_values(grad: Tensor, x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                     logscale: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The backward op's body: (dx, dα, dβ), dβ empty for Snake."""
    if use_triton(x):
        return _launch_backward(grad, x, alpha, beta, dim, logscale)
    dx, d_alpha, d_beta = reference.snake_backward(grad, x, alpha, beta, dim, logscale)
    return torch.empty_like(x).copy_(dx), d_alpha, alpha.new_empty(0) if d_beta is None else d_beta


@torch.library.custom_op("vocoder::snake_backward", mutates_args=())
def snake_backward_op(grad: Tensor, x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                      logscale: bool) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dα, dβ); dβ is empty for Snake."""
    return _backward_values(grad, x, alpha, beta, dim, logscale)


@snake_backward_op.register_fake
def _(grad, x, alpha, beta, dim, logscale):
    return torch.empty_like(x), torch.empty_like(alpha), alpha.new_empty(0) if beta is None else torch.empty_like(beta)


def _setup_context(ctx, inputs, output):
    x, alpha, beta, dim, logscale = inputs
    ctx.save_for_backward(x, alpha, beta)
    ctx.dim, ctx.logscale = dim, logscale


def _backward(ctx, grad):
    x, alpha, beta = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: differentiable closed form, for double backward
        dx, d_alpha, d_beta = reference.snake_backward(grad, x, alpha, beta, ctx.dim, ctx.logscale)
    else:  # the plain function in eager mode (eager_dispatch: no dispatch cost); the op where compile traces
        values = _backward_values if getattr(ctx, "eager", False) else snake_backward_op
        dx, d_alpha, d_beta = values(grad, x, alpha, beta, ctx.dim, ctx.logscale)
    return dx, d_alpha, (d_beta if beta is not None else None), None, None


snake_op.register_autograd(_backward, setup_context=_setup_context)


_apply = eager_dispatch("SnakeFunction", snake_op, _forward, _setup_context, _backward)


def _check(x: Tensor, dim: int, **params: Optional[Tensor]) -> int:
    """Validate the channel axis and parameter shapes; return `dim` as a non-negative index."""
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim={dim} is out of range for an input of shape {tuple(x.shape)}")
    channels = x.shape[dim]
    for name, p in params.items():
        if p is not None and p.shape != (channels,):
            raise ValueError(f"{name} must have shape ({channels},) to match x.shape[{dim}] = "
                             f"{channels}, got {tuple(p.shape)}")
        if p is not None and p.device != x.device:
            raise ValueError(f"{name} is on {p.device} but x is on {x.device}")
    return dim % x.ndim


def snake(x: Tensor, alpha: Tensor, dim: int = 1, logscale: bool = False) -> Tensor:
    """Snake: x + sin²(αx)/(α + 1e-9), α per channel along `dim` (stored as log α if `logscale`)."""
    check_floating(x, "snake")
    return _apply(x, alpha, None, _check(x, dim, alpha=alpha), logscale)


def snake_beta(x: Tensor, alpha: Tensor, beta: Tensor, dim: int = 1, logscale: bool = False) -> Tensor:
    """SnakeBeta: x + sin²(αx)/(β + 1e-9), α and β per channel along `dim` (logs if `logscale`)."""
    check_floating(x, "snake_beta")
    return _apply(x, alpha, beta, _check(x, dim, alpha=alpha, beta=beta), logscale)
