"""Fused anti-aliased Snake / SnakeBeta (BigVGAN's Activation1d): Triton forward and backward kernels,
launchers, and the torch.library op.

    y = lowpass↓2( snake( 2·upsample↑2(x) ) )      on (B, C, T), replicate padding at both ends

Polyphase form (ratio 2, even filter length K, H = K/2 − 1, filter w): sample i = 2n + p of the
upsampled signal is phase p ∈ {0, 1} at position n, and every stage is a short stencil over n:

    up:    u_p[n] = 2 Σ_e f[2e + p + H_up] · x[clamp(n − e)]
    down:  y[m]   =   Σ_d Σ_p g[2d + p + H_down] · a_p[m + d]         (a_p = snake(u_p))

with e, d over [LO, HI] = [−3, 3] for K = 12, so y[m] reads x[m−5 … m+5]. The backward is the same
two stencils transposed (da_p[n] = Σ_e g[2e+p+H_down]·dy[n−e];  dx[k] = 2 Σ_d Σ_p f[2d+p+H_up]·du_p[k+d]).
Replicate padding of the activated signal and of x becomes a few modified taps at the first/last
positions ("folds", applied only in programs that touch a row's ends); x loads are clamped
(`vocoder.kernels.polyphase`).

A program computes both phases of the activated signal once per position of an (R, W) window tile
(`AntiAliasTiles`: each tile row a W-wide window of one audio row, overlapping its neighbour by the
6-sample halo), forms the 7 shifted partial sums P_d = Σ_p g[2d+p+H]·a_p, and shifts them with
`tl.gather` along the window axis (one warp shuffle per element and shift): 2 sin per output ×
W/(W − 6) = 32/26 halo recompute; backward 2 sin + 2 cos per output, same halo. sin and cos are
libdevice's (about 1 ulp). Two alternatives were measured and not shipped
(`docs/bench/anti_alias_h100.md`, `docs/bench/anti_alias_h200.md`, code at commit 4dc62bf):
a 1-D tile recomputing the 12 activated samples of every output (2.94 ms fwd+bwd against 0.91 ms
on an H100), and range-reduced MUFU sin.approx/cos.approx (abs error about 1e-6): its forward is
0.134 against 0.172 ms on an H200, but forward + backward, what training pays, was not reliably
faster (0.82 vs 0.88 ms at (4, 96, 65536) fp32, 1.05 vs 0.80 ms at (1, 1536, 16384)), it is
NVIDIA-only inline PTX, Triton's interpreter cannot run it (CI could not test it), and it was never
validated in training.

The backward recomputes everything from x: the op saves x, α, β and the two filters, nothing else.
Per-channel α/β gradients are per-program partial sums reduced by torch in a fixed order, so they
are bitwise reproducible. Only ratio 2 / 2 with even filter lengths up to MAX_KERNEL run fused;
other configurations (and fp64 inputs) fall back to the reference with a one-time warning
(`vocoder.kernels.backend.runs_fused`).
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import filters, reference
from .inputs import check_floating
from .backend import eager_dispatch, runs_fused
from .polyphase import gathered_sum, span, stencil, store_windows, windows
from .snake_params import channel_params, parameter_grads, partial_sums
from .tiles import AntiAliasTiles, as_ints

MAX_KERNEL = 32  # longest even filter the fused kernels accept (its halo fits the default window)
_DEFAULT_TILES = as_ints(AntiAliasTiles())
# No kernel specialisation on sizes (divisibility by 16, == 1): the shifted loads and stores cannot
# use it, and every shape class would otherwise cost a compile.
_SIZES = ["C", "T", "n_tiles"]


# ---------------------------------------------------------------- activated signal and its gradient


@triton.jit
def _activated(x_row, n, T, fu_ptr, alpha, inv, KU: tl.constexpr, LOU: tl.constexpr,
               HIU: tl.constexpr, EDGE: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr):
    """Both phases of snake(upsample(x)) at positions n; zero outside [0, T) (EDGE)."""
    u0, u1 = stencil(x_row, n, T, fu_ptr, KU, LOU, HIU, 2.0, EDGE, True, False, P0, P1)
    s0 = tl.sin(u0 * alpha)
    s1 = tl.sin(u1 * alpha)
    a0 = u0 + inv * (s0 * s0)
    a1 = u1 + inv * (s1 * s1)
    if EDGE:
        inside = (n >= 0) & (n < T)
        a0 = tl.where(inside, a0, 0.0)
        a1 = tl.where(inside, a1, 0.0)
    return a0, a1


@triton.jit
def _activated_grad(x_row, g_row, n, T, fu_ptr, fd_ptr, alpha, inv,
                    KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                    KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                    EDGE: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr):
    """du_p at positions n (zero outside [0, T)), and the per-position terms of the parameter
    gradients: Σ_p da_p·u_p·sin(2αu_p) and Σ_p da_p·sin²(αu_p)."""
    u0, u1 = stencil(x_row, n, T, fu_ptr, KU, LOU, HIU, 2.0, EDGE, True, False, P0, P1)
    da0, da1 = stencil(g_row, n, T, fd_ptr, KD, LOD, HID, 1.0, EDGE, False, True, P0, P1)
    s0 = tl.sin(u0 * alpha)
    s1 = tl.sin(u1 * alpha)
    sin2_0 = 2.0 * s0 * tl.cos(u0 * alpha)
    sin2_1 = 2.0 * s1 * tl.cos(u1 * alpha)
    slope = alpha * inv
    du0 = da0 * (1.0 + slope * sin2_0)
    du1 = da1 * (1.0 + slope * sin2_1)
    arg = da0 * u0 * sin2_0 + da1 * u1 * sin2_1
    den = da0 * (s0 * s0) + da1 * (s1 * s1)
    if EDGE:
        inside = (n >= 0) & (n < T)
        du0 = tl.where(inside, du0, 0.0)
        du1 = tl.where(inside, du1, 0.0)
    return du0, du1, arg, den


# ---------------------------------------------------------------- the kernels


@triton.jit
def _fwd_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
              KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
              KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
              R: tl.constexpr, W: tl.constexpr, EDGE: tl.constexpr):
    a0, a1 = _activated(x_row, n, T, fu_ptr, alpha, inv, KU, LOU, HIU, EDGE, True, True)
    y = gathered_sum(a0, a1, n, lanes, T, fd_ptr, KD, LOD, HID, EDGE, 1, R, W)
    store_windows(y_row, y, n, lanes, T, LOD, HID, W, EDGE)


@triton.jit(do_not_specialize=_SIZES)
def _aa_fwd(x_ptr, y_ptr, fu_ptr, fd_ptr, a_ptr, b_ptr, C, T, n_tiles,
            HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
            KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
            KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
            R: tl.constexpr, W: tl.constexpr):
    row, start, lanes, n = windows(n_tiles, LOD, HID, R, W)
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    base = row.to(tl.int64) * T
    first = start + LOD - HIU  # lowest x index the tile reads
    last = start + R * (W + LOD - HID) - 1 + HID - LOU  # highest
    if (first >= 0) & (last < T):
        _fwd_tile(x_ptr + base, y_ptr + base, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                  KU, LOU, HIU, KD, LOD, HID, R, W, False)
    else:
        _fwd_tile(x_ptr + base, y_ptr + base, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                  KU, LOU, HIU, KD, LOD, HID, R, W, True)


@triton.jit
def _bwd_tile(g_row, x_row, dx_row, p_arg_ptr, p_den_ptr, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
              KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
              KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
              R: tl.constexpr, W: tl.constexpr, EDGE: tl.constexpr):
    du0, du1, arg, den = _activated_grad(x_row, g_row, n, T, fu_ptr, fd_ptr, alpha, inv,
                                         KU, LOU, HIU, KD, LOD, HID, EDGE, True, True)
    own = (lanes >= -LOU) & (lanes < W - HIU)  # each position's parameter terms once
    if EDGE:
        own = own & (n < T)
    pid = tl.program_id(0)
    tl.store(p_arg_ptr + pid, tl.sum(tl.sum(tl.where(own, arg, 0.0), axis=1), axis=0))
    tl.store(p_den_ptr + pid, tl.sum(tl.sum(tl.where(own, den, 0.0), axis=1), axis=0))
    dx = gathered_sum(du0, du1, n, lanes, T, fu_ptr, KU, LOU, HIU, EDGE, 2, R, W)
    store_windows(dx_row, 2.0 * dx, n, lanes, T, LOU, HIU, W, EDGE)


@triton.jit(do_not_specialize=_SIZES)
def _aa_bwd(g_ptr, x_ptr, dx_ptr, fu_ptr, fd_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr,
            C, T, n_tiles,
            HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
            KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
            KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
            R: tl.constexpr, W: tl.constexpr):
    LEFT = HIU if HIU > HID else HID  # reach of the x and dy stencils
    RIGHT = -LOU if LOU < LOD else -LOD
    row, start, lanes, n = windows(n_tiles, LOU, HIU, R, W)
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    base = row.to(tl.int64) * T
    first = start + LOU - LEFT
    last = start + R * (W + LOU - HIU) - 1 + HIU + RIGHT
    if (first >= 0) & (last < T):
        _bwd_tile(g_ptr + base, x_ptr + base, dx_ptr + base, p_arg_ptr, p_den_ptr, fu_ptr, fd_ptr,
                  alpha, inv, n, lanes, T, KU, LOU, HIU, KD, LOD, HID, R, W, False)
    else:
        _bwd_tile(g_ptr + base, x_ptr + base, dx_ptr + base, p_arg_ptr, p_den_ptr, fu_ptr, fd_ptr,
                  alpha, inv, n, lanes, T, KU, LOU, HIU, KD, LOD, HID, R, W, True)


# ---------------------------------------------------------------- launchers


def _geometry(tiles: AntiAliasTiles, k_up: int, k_down: int, backward: bool) -> tuple[int, dict]:
    """(outputs per program, constexpr launch arguments) of the forward or backward kernel."""
    lou, hiu = span(k_up)
    lod, hid = span(k_down)
    halo = (hiu - lou) if backward else (hid - lod)
    return tiles.outputs_per_program(halo), dict(KU=k_up, LOU=lou, HIU=hiu, KD=k_down, LOD=lod, HID=hid,
                                                 R=tiles.rows, W=tiles.width, num_warps=tiles.warps)


def _launch_forward(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                    beta: Optional[Tensor], logscale: bool, tiles: AntiAliasTiles) -> Tensor:
    x = x.contiguous()
    B, C, T = x.shape
    y = torch.empty_like(x)
    if y.numel() == 0:
        return y
    fu, fd = up_filter.reshape(-1).contiguous(), down_filter.reshape(-1).contiguous()
    alpha, b = alpha.contiguous(), (alpha if beta is None else beta).contiguous()
    per_program, meta = _geometry(tiles, fu.numel(), fd.numel(), backward=False)
    n_tiles = triton.cdiv(T, per_program)
    _aa_fwd[(B * C * n_tiles,)](x, y, fu, fd, alpha, b, C, T, n_tiles,
                                HAS_BETA=beta is not None, LOGSCALE=logscale, **meta)
    return y


def _launch_backward(grad: Tensor, x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                     beta: Optional[Tensor], logscale: bool,
                     tiles: AntiAliasTiles) -> tuple[Tensor, Tensor, Tensor]:
    x, grad = x.contiguous(), grad.contiguous()
    B, C, T = x.shape
    dx = torch.empty_like(x)
    fu, fd = up_filter.reshape(-1).contiguous(), down_filter.reshape(-1).contiguous()
    alpha, b = alpha.contiguous(), (alpha if beta is None else beta).contiguous()
    if dx.numel() == 0:
        return (dx, *parameter_grads(partial_sums(0, C, 0, x.device), alpha, beta, logscale))
    per_program, meta = _geometry(tiles, fu.numel(), fd.numel(), backward=True)
    n_tiles = triton.cdiv(T, per_program)
    partials = partial_sums(B, C, n_tiles, x.device)
    p_arg, p_den = partials
    _aa_bwd[(B * C * n_tiles,)](grad, x, dx, fu, fd, alpha, b, p_arg, p_den, C, T, n_tiles,
                                HAS_BETA=beta is not None, LOGSCALE=logscale, **meta)
    return (dx, *parameter_grads(partials, alpha, beta, logscale))


# ---------------------------------------------------------------- which path runs

_OP = "anti_alias_activation"


def _unsupported(up_filter: Tensor, down_filter: Tensor, up_ratio: int, down_ratio: int) -> Optional[str]:
    """Why the fused kernels cannot run this configuration (None when they can)."""
    if up_ratio != 2 or down_ratio != 2:
        return f"up_ratio={up_ratio}, down_ratio={down_ratio} (the fused kernels handle 2 and 2)"
    for name, f in (("up", up_filter), ("down", down_filter)):
        k = f.numel()
        if k % 2 or not 2 <= k <= MAX_KERNEL:
            return f"{name} filter of {k} taps (the fused kernels handle even sizes 2..{MAX_KERNEL})"
    return None


def _fused(x: Tensor, up_filter: Tensor, down_filter: Tensor, up_ratio: int, down_ratio: int) -> bool:
    return runs_fused(_OP, x, lambda: _unsupported(up_filter, down_filter, up_ratio, down_ratio))


# ---------------------------------------------------------------- torch.library registration
# `tiles` crosses the op boundary as AntiAliasTiles' fields in order (`as_ints`): op schemas take ints.


def _forward(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor, beta: Optional[Tensor],
             logscale: bool, up_ratio: int, down_ratio: int, tiles: list[int]) -> Tensor:
    """The op's forward: the fused kernel where it applies, else the reference."""
    if _fused(x, up_filter, down_filter, up_ratio, down_ratio):
        return _launch_forward(x, up_filter, down_filter, alpha, beta, logscale, AntiAliasTiles(*tiles))
    y = reference.anti_alias_activation(x, up_filter, down_filter, alpha, beta, logscale,
                                        up_ratio, down_ratio)
    return y.contiguous()


@torch.library.custom_op("vocoder::anti_alias_activation", mutates_args=())
def anti_alias_activation_op(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                             beta: Optional[Tensor], logscale: bool, up_ratio: int,
                             down_ratio: int, tiles: list[int]) -> Tensor:
    """Upsample → Snake (beta None) / SnakeBeta → low-pass + downsample, on (B, C, T)."""
    return _forward(x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio, tiles)


@anti_alias_activation_op.register_fake
def _(x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio, tiles):
    B, C, T = x.shape
    return x.new_empty((B, C, filters.output_length(T, up_ratio, down_ratio)))


def _backward_values(grad: Tensor, x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                     beta: Optional[Tensor], logscale: bool, up_ratio: int, down_ratio: int,
                     tiles: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The backward op's body: (dx, dα, dβ), dβ empty for Snake."""
    if _fused(x, up_filter, down_filter, up_ratio, down_ratio):
        return _launch_backward(grad, x, up_filter, down_filter, alpha, beta, logscale,
                                AntiAliasTiles(*tiles))
    dx, d_alpha, d_beta = reference.anti_alias_activation_backward(
        grad, x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio)
    return dx.contiguous(), d_alpha, alpha.new_empty(0) if d_beta is None else d_beta


@torch.library.custom_op("vocoder::anti_alias_activation_backward", mutates_args=())
def anti_alias_activation_backward_op(grad: Tensor, x: Tensor, up_filter: Tensor,
                                      down_filter: Tensor, alpha: Tensor, beta: Optional[Tensor],
                                      logscale: bool, up_ratio: int, down_ratio: int,
                                      tiles: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dα, dβ); dβ is empty for Snake."""
    return _backward_values(grad, x, up_filter, down_filter, alpha, beta, logscale, up_ratio,
                            down_ratio, tiles)


@anti_alias_activation_backward_op.register_fake
def _(grad, x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio, tiles):
    return (x.new_empty(x.shape), torch.empty_like(alpha),
            alpha.new_empty(0) if beta is None else torch.empty_like(beta))


def _setup_context(ctx, inputs, output):
    x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio, tiles = inputs
    ctx.save_for_backward(x, up_filter, down_filter, alpha, beta)
    ctx.config = (logscale, up_ratio, down_ratio, tiles)


def _backward(ctx, grad):
    x, up_filter, down_filter, alpha, beta = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: the differentiable closed form, for double backward
        dx, d_alpha, d_beta = reference.anti_alias_activation_backward(
            grad, x, up_filter, down_filter, alpha, beta, *ctx.config[:3])
    else:  # the plain function in eager mode (eager_dispatch: no dispatch cost); the op where compile traces
        values = _backward_values if getattr(ctx, "eager", False) else anti_alias_activation_backward_op
        dx, d_alpha, d_beta = values(grad, x, up_filter, down_filter, alpha, beta, *ctx.config)
    return dx, None, None, d_alpha, (d_beta if beta is not None else None), None, None, None, None


anti_alias_activation_op.register_autograd(_backward, setup_context=_setup_context)


_apply = eager_dispatch("AntiAliasActivation", anti_alias_activation_op, _forward, _setup_context, _backward)


# ---------------------------------------------------------------- functional entry point


def _check(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor, beta: Optional[Tensor],
           up_ratio: int, down_ratio: int) -> None:
    if x.ndim != 3:
        raise ValueError(f"anti_alias_activation expects x of shape (batch, channels, time), "
                         f"got {x.ndim} dimensions {tuple(x.shape)}")
    channels, length = x.shape[1], x.shape[2]
    if length < 1:
        raise ValueError(f"anti_alias_activation needs at least one time step, got x of shape "
                         f"{tuple(x.shape)}")
    for name, p in (("alpha", alpha), ("beta", beta)):
        if p is not None and p.shape != (channels,):
            raise ValueError(f"{name} must have shape ({channels},) to match the {channels} channels "
                             f"of x {tuple(x.shape)}, got {tuple(p.shape)}")
    for name, f in (("up_filter", up_filter), ("down_filter", down_filter)):
        if f.numel() < 1 or f.numel() != f.shape[-1]:
            raise ValueError(f"{name} must hold one filter (shape (K,) or (1, 1, K)), got "
                             f"{tuple(f.shape)}")
    for name, r in (("up_ratio", up_ratio), ("down_ratio", down_ratio)):
        if not isinstance(r, int) or r < 1:
            raise ValueError(f"{name} must be a positive integer, got {r!r}")
    for name, t in (("up_filter", up_filter), ("down_filter", down_filter), ("alpha", alpha),
                    ("beta", beta)):
        if t is not None and t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")


def anti_alias_activation(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                          beta: Optional[Tensor] = None, logscale: bool = False, up_ratio: int = 2,
                          down_ratio: int = 2, tiles: Optional[AntiAliasTiles] = None) -> Tensor:
    """BigVGAN's Activation1d as one fused op on x of shape (B, C, T): upsample by `up_ratio`
    (Kaiser-sinc `up_filter`, replicate padding) → Snake (β None) or SnakeBeta with per-channel
    α, β (logs if `logscale`) → low-pass `down_filter` and downsample by `down_ratio`.

    Filters are shape (K,) or (1, 1, K) (the modules' buffers); they get no gradient. Output in
    x's dtype, arithmetic in fp32; parameter gradients in the parameters' dtype. `tiles`: the
    kernels' launch geometry (default: the shipped `AntiAliasTiles()`; for tile sweeps and tests)."""
    check_floating(x, "anti_alias_activation")
    _check(x, up_filter, down_filter, alpha, beta, up_ratio, down_ratio)
    ints = _DEFAULT_TILES if tiles is None else as_ints(tiles)
    return _apply(x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio, ints)
