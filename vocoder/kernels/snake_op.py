"""Fused Snake / SnakeBeta: Triton forward and backward kernels, launchers, and the torch.library op.

y = x + sin²(αx)/(β + 1e-9) per channel (β = α for Snake), α and β optionally stored as logs.
The backward recomputes everything from x: the op saves x and its parameters, nothing else.
Two tilings cover every layout: ROWS when the axes after the channel axis hold many elements
((B, C, T) audio), COLUMNS when they hold few (channels-last (B, T, C) with dim=-1); their sizes
are a `SnakeTiles` value (the shipped one unless a caller, the tile sweep, passes another).
Per-channel parameter gradients are written as per-tile partial sums and reduced by torch in a
fixed order, so they are bitwise reproducible.
"""

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import reference
from .backend import eager_dispatch, runs_fused
from .inputs import check_floating
from .layout import channel_layout, dense_like, restore, write_target
from .snake_params import channel_params, parameter_grads, partial_sums
from .tiles import SnakeTiles, as_ints

_DEFAULT_TILES = as_ints(SnakeTiles())


@triton.jit
def _rows_tile(a_ptr, b_ptr, C, INNER, n_blocks, HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
               BLOCK: tl.constexpr):
    """ROWS tiling: program `pid` covers BLOCK elements of one (outer, channel) row. Returns the
    row's α and 1/(β + ε), the flat element indices and their mask."""
    pid = tl.program_id(0)
    row = pid // n_blocks
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    offs = (pid % n_blocks) * BLOCK + tl.arange(0, BLOCK)
    return alpha, inv, row.to(tl.int64) * INNER + offs, offs < INNER


@triton.jit
def _columns_tile(a_ptr, b_ptr, OUTER, K, INNER, HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                  BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    """COLUMNS tiling: a BLOCK_O × BLOCK_K tile of the (outer, channel·inner) matrix. Returns the
    columns' α and 1/(β + ε) (row vectors), the flat indices, the mask, and which columns exist."""
    cols = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    rows = tl.program_id(1).to(tl.int64) * BLOCK_O + tl.arange(0, BLOCK_O)
    col_ok = cols < K
    alpha, inv = channel_params(a_ptr, b_ptr, tl.where(col_ok, cols // INNER, 0), HAS_BETA, LOGSCALE)
    idx = rows[:, None] * K + cols[None, :]
    mask = (rows[:, None] < OUTER) & col_ok[None, :]
    return alpha[None, :], inv[None, :], idx, mask, col_ok


@triton.jit
def _snake(x, alpha, inv):
    """x + sin²(αx)·inv, in fp32."""
    s = tl.sin(x * alpha)
    return x + inv * (s * s)


@triton.jit
def _snake_grad(x, g, alpha, inv):
    """dx = g·(1 + α·inv·sin(2αx)) and the per-element parameter terms g·x·sin(2αx), g·sin²(αx)."""
    s = tl.sin(x * alpha)
    sin2 = 2.0 * s * tl.cos(x * alpha)
    return g * (1.0 + alpha * inv * sin2), g * x * sin2, g * s * s


@triton.jit
def _snake_fwd_rows(x_ptr, y_ptr, a_ptr, b_ptr, C, INNER, n_blocks,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr, BLOCK: tl.constexpr):
    alpha, inv, idx, mask = _rows_tile(a_ptr, b_ptr, C, INNER, n_blocks, HAS_BETA, LOGSCALE, BLOCK)
    y = _snake(tl.load(x_ptr + idx, mask=mask).to(tl.float32), alpha, inv)
    tl.store(y_ptr + idx, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _snake_bwd_rows(g_ptr, x_ptr, dx_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr, C, INNER, n_blocks,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr, BLOCK: tl.constexpr):
    alpha, inv, idx, mask = _rows_tile(a_ptr, b_ptr, C, INNER, n_blocks, HAS_BETA, LOGSCALE, BLOCK)
    x = tl.load(x_ptr + idx, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + idx, mask=mask).to(tl.float32)
    dx, arg, den = _snake_grad(x, g, alpha, inv)
    tl.store(dx_ptr + idx, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    # masked lanes load x = g = 0, so they add nothing to the partial sums
    pid = tl.program_id(0)
    tl.store(p_arg_ptr + pid, tl.sum(arg, axis=0))
    tl.store(p_den_ptr + pid, tl.sum(den, axis=0))


@triton.jit
def _snake_fwd_cols(x_ptr, y_ptr, a_ptr, b_ptr, OUTER, K, INNER,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                    BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    alpha, inv, idx, mask, _ = _columns_tile(a_ptr, b_ptr, OUTER, K, INNER, HAS_BETA, LOGSCALE,
                                             BLOCK_O, BLOCK_K)
    y = _snake(tl.load(x_ptr + idx, mask=mask).to(tl.float32), alpha, inv)
    tl.store(y_ptr + idx, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _snake_bwd_cols(g_ptr, x_ptr, dx_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr, OUTER, K, INNER,
                    HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                    BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    alpha, inv, idx, mask, col_ok = _columns_tile(a_ptr, b_ptr, OUTER, K, INNER, HAS_BETA, LOGSCALE,
                                                  BLOCK_O, BLOCK_K)
    x = tl.load(x_ptr + idx, mask=mask).to(tl.float32)
    g = tl.load(g_ptr + idx, mask=mask).to(tl.float32)
    dx, arg, den = _snake_grad(x, g, alpha, inv)
    tl.store(dx_ptr + idx, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    cols = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
    p_idx = tl.program_id(1).to(tl.int64) * K + cols
    tl.store(p_arg_ptr + p_idx, tl.sum(arg, axis=0), mask=col_ok)
    tl.store(p_den_ptr + p_idx, tl.sum(den, axis=0), mask=col_ok)


def _launch_setup(x: Tensor, out: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                  logscale: bool) -> tuple:
    """x's dense layout, the buffer the kernel writes `out` into (its own memory or a scratch copy,
    and which), α and β (α again for Snake) contiguous, and the kernels' constexpr flags."""
    layout = channel_layout(x, dim)
    target, in_place = write_target(out, layout, dim)
    b = alpha if beta is None else beta
    flags = dict(HAS_BETA=beta is not None, LOGSCALE=logscale)
    return layout, target, in_place, alpha.contiguous(), b.contiguous(), flags


def _launch_forward(x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int, logscale: bool,
                    tiles: SnakeTiles) -> Tensor:
    out = torch.empty_like(x)
    layout, target, in_place, alpha, b, flags = _launch_setup(x, out, alpha, beta, dim, logscale)
    xd, O, C, I = layout.dense, layout.outer, layout.channels, layout.inner
    if xd.numel() == 0:
        return out
    if I >= tiles.rows_min_inner:
        block, warps = tiles.forward_block, tiles.forward_warps
        n_blocks = triton.cdiv(I, block)
        _snake_fwd_rows[(O * C * n_blocks,)](xd, target, alpha, b, C, I, n_blocks, **flags,
                                             BLOCK=block, num_warps=warps)
    else:
        grid = (triton.cdiv(C * I, tiles.column_width), triton.cdiv(O, tiles.column_rows))
        _snake_fwd_cols[grid](xd, target, alpha, b, O, C * I, I, **flags,
                              BLOCK_O=tiles.column_rows, BLOCK_K=tiles.column_width, num_warps=4)
    if not in_place:
        out.copy_(restore(target, layout))
    return out


def _launch_backward(grad: Tensor, x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                     logscale: bool, tiles: SnakeTiles) -> tuple[Tensor, Tensor, Tensor]:
    dx = torch.empty_like(x)
    layout, target, in_place, alpha, b, flags = _launch_setup(x, dx, alpha, beta, dim, logscale)
    gd = dense_like(grad, layout)
    xd, O, C, I = layout.dense, layout.outer, layout.channels, layout.inner
    if xd.numel() == 0:
        return (dx, *parameter_grads(partial_sums(0, C, 0, x.device), alpha, beta, logscale))
    if I >= tiles.rows_min_inner:
        block, warps = tiles.backward_tile(x.dtype)
        n_blocks = triton.cdiv(I, block)
        partials = partial_sums(O, C, n_blocks, x.device)
        p_arg, p_den = partials
        _snake_bwd_rows[(O * C * n_blocks,)](gd, xd, target, alpha, b, p_arg, p_den, C, I, n_blocks,
                                             **flags, BLOCK=block, num_warps=warps)
    else:
        n_row_blocks = triton.cdiv(O, tiles.column_rows)
        partials = partial_sums(n_row_blocks, C, I, x.device)
        p_arg, p_den = partials
        grid = (triton.cdiv(C * I, tiles.column_width), n_row_blocks)
        _snake_bwd_cols[grid](gd, xd, target, alpha, b, p_arg, p_den, O, C * I, I, **flags,
                              BLOCK_O=tiles.column_rows, BLOCK_K=tiles.column_width, num_warps=4)
    if not in_place:
        dx.copy_(restore(target, layout))
    return (dx, *parameter_grads(partials, alpha, beta, logscale))


# ---------------------------------------------------------------- torch.library registration
# `tiles` crosses the op boundary as SnakeTiles' fields in order (`as_ints`): op schemas take ints.

_OP = "snake"


def _forward(x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int, logscale: bool,
             tiles: list[int]) -> Tensor:
    """The op's forward: the Triton kernel where it runs, else the reference."""
    if runs_fused(_OP, x):
        return _launch_forward(x, alpha, beta, dim, logscale, SnakeTiles(*tiles))
    y = reference.snake(x, alpha, beta, dim, logscale)
    return torch.empty_like(x).copy_(y)  # the layout the fake implementation promises


@torch.library.custom_op("vocoder::snake", mutates_args=())
def snake_op(x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int, logscale: bool,
             tiles: list[int]) -> Tensor:
    """Snake (beta None) or SnakeBeta along axis `dim` of x."""
    return _forward(x, alpha, beta, dim, logscale, tiles)


@snake_op.register_fake
def _(x, alpha, beta, dim, logscale, tiles):
    return torch.empty_like(x)


def _backward_values(grad: Tensor, x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                     logscale: bool, tiles: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The backward op's body: (dx, dα, dβ), dβ empty for Snake."""
    if runs_fused(_OP, x):
        return _launch_backward(grad, x, alpha, beta, dim, logscale, SnakeTiles(*tiles))
    dx, d_alpha, d_beta = reference.snake_backward(grad, x, alpha, beta, dim, logscale)
    return torch.empty_like(x).copy_(dx), d_alpha, alpha.new_empty(0) if d_beta is None else d_beta


@torch.library.custom_op("vocoder::snake_backward", mutates_args=())
def snake_backward_op(grad: Tensor, x: Tensor, alpha: Tensor, beta: Optional[Tensor], dim: int,
                      logscale: bool, tiles: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dα, dβ); dβ is empty for Snake."""
    return _backward_values(grad, x, alpha, beta, dim, logscale, tiles)


@snake_backward_op.register_fake
def _(grad, x, alpha, beta, dim, logscale, tiles):
    return torch.empty_like(x), torch.empty_like(alpha), alpha.new_empty(0) if beta is None else torch.empty_like(beta)


def _setup_context(ctx, inputs, output):
    x, alpha, beta, dim, logscale, tiles = inputs
    ctx.save_for_backward(x, alpha, beta)
    ctx.config = (dim, logscale, tiles)


def _backward(ctx, grad):
    x, alpha, beta = ctx.saved_tensors
    dim, logscale, tiles = ctx.config
    if torch.is_grad_enabled():  # create_graph=True: differentiable closed form, for double backward
        dx, d_alpha, d_beta = reference.snake_backward(grad, x, alpha, beta, dim, logscale)
    else:  # the plain function in eager mode (eager_dispatch: no dispatch cost); the op where compile traces
        values = _backward_values if getattr(ctx, "eager", False) else snake_backward_op
        dx, d_alpha, d_beta = values(grad, x, alpha, beta, dim, logscale, tiles)
    return dx, d_alpha, (d_beta if beta is not None else None), None, None, None


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


def _tile_ints(tiles: Optional[SnakeTiles]) -> list[int]:
    return _DEFAULT_TILES if tiles is None else as_ints(tiles)


def snake(x: Tensor, alpha: Tensor, dim: int = 1, logscale: bool = False,
          tiles: Optional[SnakeTiles] = None) -> Tensor:
    """Snake: x + sin²(αx)/(α + 1e-9), α per channel along `dim` (stored as log α if `logscale`).
    `tiles`: the kernels' launch geometry (default: the shipped `SnakeTiles()`; for tile sweeps)."""
    check_floating(x, "snake")
    return _apply(x, alpha, None, _check(x, dim, alpha=alpha), logscale, _tile_ints(tiles))


def snake_beta(x: Tensor, alpha: Tensor, beta: Tensor, dim: int = 1, logscale: bool = False,
               tiles: Optional[SnakeTiles] = None) -> Tensor:
    """SnakeBeta: x + sin²(αx)/(β + 1e-9), α and β per channel along `dim` (logs if `logscale`).
    `tiles`: as for `snake`."""
    check_floating(x, "snake_beta")
    return _apply(x, alpha, beta, _check(x, dim, alpha=alpha, beta=beta), logscale, _tile_ints(tiles))
