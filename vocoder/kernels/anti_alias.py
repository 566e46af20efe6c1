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
positions ("folds", applied only in programs that touch a row's ends); x loads are clamped.

Two kernel variants, chosen by the module-level `VARIANT` (vocoder.bench.anti_alias_check times both):
* "gather" (default): a program computes both phases of the activated signal once per position
  of an (R, W) window tile (each tile row a W-wide window of one audio row, overlapping its
  neighbour by the 6-sample halo), forms the 7 shifted partial sums P_d = Σ_p g[2d+p+H]·a_p, and
  shifts them with `tl.gather` along the window axis (one warp shuffle per element and shift).
  2 sin per output × W/(W − 6) = 32/26 halo recompute; backward 2 sin + 2 cos per output, same halo.
* "recompute": a 1-D tile of outputs; every output recomputes the 12 activated samples it needs
  from shifted loads of x (12 sin per output, 6× recompute; backward 12 sin + 12 cos).
`FAST_TRIG` swaps the libdevice sin/cos for range-reduced MUFU approximations (off by default).

The backward recomputes everything from x: the op saves x, α, β and the two filters, nothing else.
Per-channel α/β gradients are per-program partial sums reduced by torch in a fixed order, so they
are bitwise reproducible. Only ratio 2 / 2 with even filter lengths up to MAX_KERNEL run fused;
other configurations (and fp64 inputs) fall back to the reference with a one-time warning.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import reference
from .backend import eager_dispatch, interpreter_enabled, use_triton
from .inputs import check_floating
from .snake import parameter_grads, channel_params

VARIANT = "gather"  # "gather" (compute each activated sample once per tile) or "recompute"
VARIANTS = ("gather", "recompute")
# Window tile of the gather variant: R windows of W positions per program. W = 32 keeps a window
# in one warp in the layout the loads get, so the gathers are warp shuffles with no layout
# conversion; W = 64 makes Triton 3.6 convert layouts through shared memory before every gather.
GATHER_R, GATHER_W, GATHER_WARPS = 16, 32, 4
RECOMPUTE_BLOCK, RECOMPUTE_WARPS = 256, 4  # outputs per program in the recompute variant (512 spills in bwd)
MAX_KERNEL = 32  # longest even filter the fused kernels accept (the halo must fit the window)
# sin/cos: libdevice fp32 (about 25 instructions each, ~1 ulp) by default. FAST_TRIG = True uses
# a Cody-Waite reduction to [−π, π] and the MUFU sin.approx/cos.approx instructions (absolute error
# about 1e-6): a lever for when the GPU numbers show the transcendentals are the bottleneck. Not
# available in Triton's interpreter (which always runs the libdevice path).
FAST_TRIG = False
_FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# No kernel specialisation on sizes (divisibility by 16, == 1): the shifted loads and stores cannot
# use it, and every shape class would otherwise cost a compile.
_SIZES = ["C", "T", "n_tiles"]


def _span(k: int) -> tuple[int, int]:
    """[LO, HI] of the stencil offsets for an even filter of length k (ratio 2): taps 2e + p + H."""
    h = k // 2 - 1
    lo = min(math.ceil((-p - h) / 2) for p in (0, 1))
    hi = max((k - 1 - p - h) // 2 for p in (0, 1))
    return lo, hi


# ---------------------------------------------------------------- Triton building blocks


@triton.jit
def _tap(w_ptr, t: tl.constexpr, K: tl.constexpr):
    """Filter tap w[t] in fp32; 0 for t outside [0, K)."""
    value = 0.0
    if (t >= 0) and (t < K):
        value = tl.load(w_ptr + t).to(tl.float32)
    return value


@triton.jit
def _tap_totals(w_ptr, K: tl.constexpr):
    """(Σ w[even t], Σ w[odd t]): what the replicate-padding folds are computed from."""
    even = 0.0
    odd = 0.0
    for t in tl.static_range(K):
        if t % 2 == 0:
            even += tl.load(w_ptr + t).to(tl.float32)
        else:
            odd += tl.load(w_ptr + t).to(tl.float32)
    return even, odd


# Replicate padding folds taps onto the ends of a row. The folded sums are carried through the
# unrolled tap loops as running sums (ascending tap index t0 = 2d + H, t1 = t0 + 1):
#   LOWPASS folds (the activated signal is padded): at its first sample a tap t also takes
#     Σ_{t'<t} w (the running prefix `pre`), at its last Σ_{t'>t} w = total − pre − w[t0] − w[t1];
#   UPSAMPLE folds (x is padded; seen from dx): at output k = 0 a tap t also takes Σ_{j≥1} w[t+2j],
#     at k = T − 1 Σ_{j≥1} w[t−2j] (the running same-parity prefixes r0, r1).


@triton.jit
def _stencil(src_row, n, T, w_ptr, K: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
             SCALE: tl.constexpr, EDGE: tl.constexpr, CLAMP: tl.constexpr, FOLD: tl.constexpr,
             P0: tl.constexpr, P1: tl.constexpr):
    """v_p[n] = SCALE·Σ_e w[2e + p + H]·src[n − e] for the phases p asked for (P0, P1).

    Outside [0, T) src is replicated (CLAMP) or zero. FOLD adds the low-pass folds at n = 0
    (phase 0) and n = T − 1 (phase 1): the backward of the low-pass stage, whose input was
    replicate-padded. EDGE=False promises every n − e lies in [0, T) (no clamping, masking or
    folding)."""
    H = K // 2 - 1
    v0 = tl.zeros(n.shape, tl.float32)
    v1 = tl.zeros(n.shape, tl.float32)
    at_n = src_row + n  # interior loads: one address per element, the tap offset an immediate
    pre = 0.0
    total = 0.0
    if EDGE and FOLD:
        tot_even, tot_odd = _tap_totals(w_ptr, K)
        total = tot_even + tot_odd
    for i in tl.static_range(HI - LO + 1):
        e = LO + i
        t0 = 2 * e + H
        t1 = 2 * e + 1 + H
        use0 = P0 and (t0 >= 0) and (t0 < K)
        use1 = P1 and (t1 >= 0) and (t1 < K)
        w0 = _tap(w_ptr, t0, K)
        w1 = _tap(w_ptr, t1, K)
        if use0 or use1:
            idx = n - e
            if EDGE:
                if CLAMP:
                    s = tl.load(src_row + tl.minimum(tl.maximum(idx, 0), T - 1)).to(tl.float32)
                else:
                    s = tl.load(src_row + idx, mask=(idx >= 0) & (idx < T), other=0.0).to(tl.float32)
            else:
                s = tl.load(at_n - e).to(tl.float32)
            if use0:
                c0 = w0
                if EDGE and FOLD:
                    c0 = c0 + tl.where(n == 0, pre, 0.0)
                v0 += c0 * s
            if use1:
                c1 = w1
                if EDGE and FOLD:
                    c1 = c1 + tl.where(n == T - 1, total - pre - w0 - w1, 0.0)
                v1 += c1 * s
        if EDGE and FOLD:
            pre = pre + w0 + w1
    return v0 * SCALE, v1 * SCALE


@triton.jit
def _shift_term(v0, v1, n, T, w_ptr, d: tl.constexpr, K: tl.constexpr, EDGE: tl.constexpr,
                FOLD: tl.constexpr, s0, s1, tot_even, tot_odd):
    """P_d[n] = Σ_p c_p·v_p[n] with c_p = w[2d + p + H], plus (EDGE only) the folds of
    FOLD 1 (low-pass; running prefix s0) or FOLD 2 (upsampling, into dx; running same-parity
    prefixes s0, s1, output k = n − d). Call with d ascending; returns (P_d, s0, s1)."""
    H = K // 2 - 1
    t0 = 2 * d + H
    t1 = 2 * d + 1 + H
    w0 = _tap(w_ptr, t0, K)
    w1 = _tap(w_ptr, t1, K)
    acc = tl.zeros(n.shape, tl.float32)
    if (t0 >= 0) and (t0 < K):
        c0 = w0
        if EDGE and (FOLD == 1):
            c0 = c0 + tl.where(n == 0, s0, 0.0)
        if EDGE and (FOLD == 2):
            same0 = tot_odd if t0 % 2 else tot_even
            c0 = c0 + tl.where(n == d, same0 - s0 - w0, 0.0) + tl.where(n == T - 1 + d, s0, 0.0)
        acc += c0 * v0
    if (t1 >= 0) and (t1 < K):
        c1 = w1
        if EDGE and (FOLD == 1):
            c1 = c1 + tl.where(n == T - 1, tot_even + tot_odd - s0 - w0 - w1, 0.0)
        if EDGE and (FOLD == 2):
            same1 = tot_odd if t1 % 2 else tot_even
            c1 = c1 + tl.where(n == d, same1 - s1 - w1, 0.0) + tl.where(n == T - 1 + d, s1, 0.0)
        acc += c1 * v1
    if EDGE and (FOLD == 1):
        s0 = s0 + w0 + w1
    if EDGE and (FOLD == 2):
        s0 = s0 + w0
        s1 = s1 + w1
    return acc, s0, s1


@triton.jit
def _fold_totals(w_ptr, K: tl.constexpr, EDGE: tl.constexpr):
    """Initial fold state (s0, s1, Σ w[even], Σ w[odd]) for a tap loop (zeros unless EDGE)."""
    tot_even = 0.0
    tot_odd = 0.0
    if EDGE:
        tot_even, tot_odd = _tap_totals(w_ptr, K)
    return 0.0, 0.0, tot_even, tot_odd


@triton.jit
def _reduce_2pi(x):
    """x − 2πk for the nearest integer k: the argument of the MUFU approximations (FAST_TRIG)."""
    k = tl.floor(x * 0.15915494309189535 + 0.5)
    r = tl.fma(k, -6.2831854820251465, x)  # 2π rounded to fp32 ...
    return tl.fma(k, 1.7484555314695172e-07, r)  # ... and what that rounding left out


@triton.jit
def _sin(x, FAST: tl.constexpr):
    if FAST:
        return tl.inline_asm_elementwise("sin.approx.f32 $0, $1;", "=r,r", [_reduce_2pi(x)],
                                         dtype=tl.float32, is_pure=True, pack=1)
    else:
        return tl.sin(x)


@triton.jit
def _cos(x, FAST: tl.constexpr):
    if FAST:
        return tl.inline_asm_elementwise("cos.approx.f32 $0, $1;", "=r,r", [_reduce_2pi(x)],
                                         dtype=tl.float32, is_pure=True, pack=1)
    else:
        return tl.cos(x)


@triton.jit
def _activated(x_row, n, T, fu_ptr, alpha, inv, KU: tl.constexpr, LOU: tl.constexpr,
               HIU: tl.constexpr, EDGE: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr,
               FAST: tl.constexpr):
    """Both phases of snake(upsample(x)) at positions n; zero outside [0, T) (EDGE)."""
    u0, u1 = _stencil(x_row, n, T, fu_ptr, KU, LOU, HIU, 2.0, EDGE, True, False, P0, P1)
    s0 = _sin(u0 * alpha, FAST)
    s1 = _sin(u1 * alpha, FAST)
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
                    EDGE: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr, FAST: tl.constexpr):
    """du_p at positions n (zero outside [0, T)), and the per-position terms of the parameter
    gradients: Σ_p da_p·u_p·sin(2αu_p) and Σ_p da_p·sin²(αu_p)."""
    u0, u1 = _stencil(x_row, n, T, fu_ptr, KU, LOU, HIU, 2.0, EDGE, True, False, P0, P1)
    da0, da1 = _stencil(g_row, n, T, fd_ptr, KD, LOD, HID, 1.0, EDGE, False, True, P0, P1)
    s0 = _sin(u0 * alpha, FAST)
    s1 = _sin(u1 * alpha, FAST)
    sin2_0 = 2.0 * s0 * _cos(u0 * alpha, FAST)
    sin2_1 = 2.0 * s1 * _cos(u1 * alpha, FAST)
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


# ---------------------------------------------------------------- variant "gather"


@triton.jit
def _fwd_gather_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                     KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                     KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                     R: tl.constexpr, W: tl.constexpr, EDGE: tl.constexpr, FAST: tl.constexpr):
    PADL = -LOD
    OUT_W = W + LOD - HID
    a0, a1 = _activated(x_row, n, T, fu_ptr, alpha, inv, KU, LOU, HIU, EDGE, True, True, FAST)
    y = tl.zeros((R, W), tl.float32)
    s0, s1, tot_even, tot_odd = _fold_totals(fd_ptr, KD, EDGE)
    for i in tl.static_range(HID - LOD + 1):
        d = LOD + i
        p, s0, s1 = _shift_term(a0, a1, n, T, fd_ptr, d, KD, EDGE, 1, s0, s1, tot_even, tot_odd)
        src = tl.broadcast_to(tl.minimum(lanes + (PADL + d), W - 1), (R, W))
        y += tl.gather(p, src, 1)
    m = n + PADL  # the output a window lane writes: its position shifted by the left halo
    mask = lanes < OUT_W
    if EDGE:
        mask = mask & (m < T)
    tl.store(y_row + m, y.to(y_row.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=_SIZES)
def _aa_fwd_gather(x_ptr, y_ptr, fu_ptr, fd_ptr, a_ptr, b_ptr, C, T, n_tiles,
                   HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                   KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                   KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                   R: tl.constexpr, W: tl.constexpr, FAST: tl.constexpr):
    OUT_W = W + LOD - HID
    pid = tl.program_id(0)
    row = pid // n_tiles
    tile = pid - row * n_tiles
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    start = tile * (R * OUT_W)
    lanes = tl.arange(0, W)[None, :]
    n = start + tl.arange(0, R)[:, None] * OUT_W + lanes + LOD  # window positions, (R, W)
    x_row = x_ptr + row.to(tl.int64) * T
    y_row = y_ptr + row.to(tl.int64) * T
    first = start + LOD - HIU  # lowest x index the tile reads
    last = start + R * OUT_W - 1 + HID - LOU  # highest
    if (first >= 0) & (last < T):
        _fwd_gather_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                         KU, LOU, HIU, KD, LOD, HID, R, W, False, FAST)
    else:
        _fwd_gather_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                         KU, LOU, HIU, KD, LOD, HID, R, W, True, FAST)


@triton.jit
def _bwd_gather_tile(g_row, x_row, dx_row, p_arg_ptr, p_den_ptr, pid, fu_ptr, fd_ptr, alpha, inv,
                     n, lanes, T,
                     KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                     KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                     R: tl.constexpr, W: tl.constexpr, EDGE: tl.constexpr, FAST: tl.constexpr):
    PADL = -LOU
    OUT_W = W + LOU - HIU
    du0, du1, arg, den = _activated_grad(x_row, g_row, n, T, fu_ptr, fd_ptr, alpha, inv,
                                         KU, LOU, HIU, KD, LOD, HID, EDGE, True, True, FAST)
    own = (lanes >= PADL) & (lanes < PADL + OUT_W)  # each position's parameter terms once
    if EDGE:
        own = own & (n < T)
    tl.store(p_arg_ptr + pid, tl.sum(tl.sum(tl.where(own, arg, 0.0), axis=1), axis=0))
    tl.store(p_den_ptr + pid, tl.sum(tl.sum(tl.where(own, den, 0.0), axis=1), axis=0))
    dx = tl.zeros((R, W), tl.float32)
    s0, s1, tot_even, tot_odd = _fold_totals(fu_ptr, KU, EDGE)
    for i in tl.static_range(HIU - LOU + 1):
        d = LOU + i
        p, s0, s1 = _shift_term(du0, du1, n, T, fu_ptr, d, KU, EDGE, 2, s0, s1, tot_even, tot_odd)
        src = tl.broadcast_to(tl.minimum(lanes + (PADL + d), W - 1), (R, W))
        dx += tl.gather(p, src, 1)
    k = n + PADL
    mask = lanes < OUT_W
    if EDGE:
        mask = mask & (k < T)
    tl.store(dx_row + k, (2.0 * dx).to(dx_row.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=_SIZES)
def _aa_bwd_gather(g_ptr, x_ptr, dx_ptr, fu_ptr, fd_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr,
                   C, T, n_tiles,
                   HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                   KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                   KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                   R: tl.constexpr, W: tl.constexpr, FAST: tl.constexpr):
    OUT_W = W + LOU - HIU
    LEFT = HIU if HIU > HID else HID  # reach of the x and dy stencils
    RIGHT = -LOU if LOU < LOD else -LOD
    pid = tl.program_id(0)
    row = pid // n_tiles
    tile = pid - row * n_tiles
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    start = tile * (R * OUT_W)
    lanes = tl.arange(0, W)[None, :]
    n = start + tl.arange(0, R)[:, None] * OUT_W + lanes + LOU
    base = row.to(tl.int64) * T
    first = start + LOU - LEFT
    last = start + R * OUT_W - 1 + HIU + RIGHT
    if (first >= 0) & (last < T):
        _bwd_gather_tile(g_ptr + base, x_ptr + base, dx_ptr + base, p_arg_ptr, p_den_ptr, pid,
                         fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                         KU, LOU, HIU, KD, LOD, HID, R, W, False, FAST)
    else:
        _bwd_gather_tile(g_ptr + base, x_ptr + base, dx_ptr + base, p_arg_ptr, p_den_ptr, pid,
                         fu_ptr, fd_ptr, alpha, inv, n, lanes, T,
                         KU, LOU, HIU, KD, LOD, HID, R, W, True, FAST)


# ---------------------------------------------------------------- variant "recompute"


@triton.jit
def _fwd_recompute_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, m, T,
                        KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                        KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                        EDGE: tl.constexpr, FAST: tl.constexpr):
    HD = KD // 2 - 1
    y = tl.zeros(m.shape, tl.float32)
    s0, s1, tot_even, tot_odd = _fold_totals(fd_ptr, KD, EDGE)
    for i in tl.static_range(HID - LOD + 1):
        d = LOD + i
        n = m + d
        a0, a1 = _activated(x_row, n, T, fu_ptr, alpha, inv, KU, LOU, HIU, EDGE,
                            (2 * d + HD >= 0) and (2 * d + HD < KD),
                            (2 * d + 1 + HD >= 0) and (2 * d + 1 + HD < KD), FAST)
        p, s0, s1 = _shift_term(a0, a1, n, T, fd_ptr, d, KD, EDGE, 1, s0, s1, tot_even, tot_odd)
        y += p
    if EDGE:
        tl.store(y_row + m, y.to(y_row.dtype.element_ty), mask=m < T)
    else:
        tl.store(y_row + m, y.to(y_row.dtype.element_ty))


@triton.jit(do_not_specialize=_SIZES)
def _aa_fwd_recompute(x_ptr, y_ptr, fu_ptr, fd_ptr, a_ptr, b_ptr, C, T, n_tiles,
                      HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                      KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                      KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                      BLOCK: tl.constexpr, FAST: tl.constexpr):
    pid = tl.program_id(0)
    row = pid // n_tiles
    tile = pid - row * n_tiles
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    start = tile * BLOCK
    m = start + tl.arange(0, BLOCK)
    x_row = x_ptr + row.to(tl.int64) * T
    y_row = y_ptr + row.to(tl.int64) * T
    if (start + LOD - HIU >= 0) & (start + BLOCK - 1 + HID - LOU < T):
        _fwd_recompute_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, m, T,
                            KU, LOU, HIU, KD, LOD, HID, False, FAST)
    else:
        _fwd_recompute_tile(x_row, y_row, fu_ptr, fd_ptr, alpha, inv, m, T,
                            KU, LOU, HIU, KD, LOD, HID, True, FAST)


@triton.jit
def _bwd_recompute_tile(g_row, x_row, dx_row, p_arg_ptr, p_den_ptr, pid, fu_ptr, fd_ptr,
                        alpha, inv, k, T,
                        KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                        KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                        EDGE: tl.constexpr, FAST: tl.constexpr):
    HU = KU // 2 - 1
    dx = tl.zeros(k.shape, tl.float32)
    s0, s1, tot_even, tot_odd = _fold_totals(fu_ptr, KU, EDGE)
    for i in tl.static_range(HIU - LOU + 1):
        d = LOU + i
        n = k + d
        du0, du1, arg, den = _activated_grad(x_row, g_row, n, T, fu_ptr, fd_ptr, alpha, inv,
                                             KU, LOU, HIU, KD, LOD, HID, EDGE,
                                             (2 * d + HU >= 0) and (2 * d + HU < KU),
                                             (2 * d + 1 + HU >= 0) and (2 * d + 1 + HU < KU), FAST)
        if d == 0:  # output k owns position n = k: its parameter terms, counted once
            own = k < T
            tl.store(p_arg_ptr + pid, tl.sum(tl.where(own, arg, 0.0), axis=0))
            tl.store(p_den_ptr + pid, tl.sum(tl.where(own, den, 0.0), axis=0))
        p, s0, s1 = _shift_term(du0, du1, n, T, fu_ptr, d, KU, EDGE, 2, s0, s1, tot_even, tot_odd)
        dx += p
    if EDGE:
        tl.store(dx_row + k, (2.0 * dx).to(dx_row.dtype.element_ty), mask=k < T)
    else:
        tl.store(dx_row + k, (2.0 * dx).to(dx_row.dtype.element_ty))


@triton.jit(do_not_specialize=_SIZES)
def _aa_bwd_recompute(g_ptr, x_ptr, dx_ptr, fu_ptr, fd_ptr, a_ptr, b_ptr, p_arg_ptr, p_den_ptr,
                      C, T, n_tiles,
                      HAS_BETA: tl.constexpr, LOGSCALE: tl.constexpr,
                      KU: tl.constexpr, LOU: tl.constexpr, HIU: tl.constexpr,
                      KD: tl.constexpr, LOD: tl.constexpr, HID: tl.constexpr,
                      BLOCK: tl.constexpr, FAST: tl.constexpr):
    LEFT = HIU if HIU > HID else HID
    RIGHT = -LOU if LOU < LOD else -LOD
    pid = tl.program_id(0)
    row = pid // n_tiles
    tile = pid - row * n_tiles
    alpha, inv = channel_params(a_ptr, b_ptr, row % C, HAS_BETA, LOGSCALE)
    start = tile * BLOCK
    k = start + tl.arange(0, BLOCK)
    base = row.to(tl.int64) * T
    if (start + LOU - LEFT >= 0) & (start + BLOCK - 1 + HIU + RIGHT < T):
        _bwd_recompute_tile(g_ptr + base, x_ptr + base, dx_ptr + base, p_arg_ptr, p_den_ptr, pid,
                            fu_ptr, fd_ptr, alpha, inv, k, T, KU, LOU, HIU, KD, LOD, HID, False, FAST)
    else:
        _bwd_recompute_tile(g_ptr + base, x_ptr + base, dx_ptr + base, p_arg_ptr, p_den_ptr, pid,
                            fu_ptr, fd_ptr, alpha, inv, k, T, KU, LOU, HIU, KD, LOD, HID, True, FAST)


# ---------------------------------------------------------------- launchers


def _geometry(variant: str, k_up: int, k_down: int, backward: bool) -> tuple[int, dict]:
    """(outputs per program, constexpr launch arguments) for a variant."""
    lou, hiu = _span(k_up)
    lod, hid = _span(k_down)
    flags = dict(KU=k_up, LOU=lou, HIU=hiu, KD=k_down, LOD=lod, HID=hid,
                 FAST=FAST_TRIG and not interpreter_enabled())
    if variant == "gather":
        halo = (hiu - lou) if backward else (hid - lod)
        return GATHER_R * (GATHER_W - halo), dict(flags, R=GATHER_R, W=GATHER_W, num_warps=GATHER_WARPS)
    if variant == "recompute":
        return RECOMPUTE_BLOCK, dict(flags, BLOCK=RECOMPUTE_BLOCK, num_warps=RECOMPUTE_WARPS)
    raise ValueError(f"anti_alias.VARIANT={variant!r} is not one of {VARIANTS}")


def _launch_forward(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                    beta: Optional[Tensor], logscale: bool) -> Tensor:
    x = x.contiguous()
    B, C, T = x.shape
    y = torch.empty_like(x)
    if y.numel() == 0:
        return y
    fu, fd = up_filter.reshape(-1).contiguous(), down_filter.reshape(-1).contiguous()
    alpha, b = alpha.contiguous(), (alpha if beta is None else beta).contiguous()
    per_program, meta = _geometry(VARIANT, fu.numel(), fd.numel(), backward=False)
    n_tiles = triton.cdiv(T, per_program)
    kernel = _aa_fwd_gather if VARIANT == "gather" else _aa_fwd_recompute
    kernel[(B * C * n_tiles,)](x, y, fu, fd, alpha, b, C, T, n_tiles,
                               HAS_BETA=beta is not None, LOGSCALE=logscale, **meta)
    return y


def _launch_backward(grad: Tensor, x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                     beta: Optional[Tensor], logscale: bool) -> tuple[Tensor, Tensor, Tensor]:
    x, grad = x.contiguous(), grad.contiguous()
    B, C, T = x.shape
    dx = torch.empty_like(x)
    fu, fd = up_filter.reshape(-1).contiguous(), down_filter.reshape(-1).contiguous()
    alpha, b = alpha.contiguous(), (alpha if beta is None else beta).contiguous()
    if dx.numel() == 0:
        zeros = torch.zeros(C, dtype=torch.float32, device=x.device)
        return (dx, *parameter_grads(zeros, zeros, alpha, beta, logscale))
    per_program, meta = _geometry(VARIANT, fu.numel(), fd.numel(), backward=True)
    n_tiles = triton.cdiv(T, per_program)
    p_arg = torch.empty((B, C, n_tiles), dtype=torch.float32, device=x.device)
    p_den = torch.empty_like(p_arg)
    kernel = _aa_bwd_gather if VARIANT == "gather" else _aa_bwd_recompute
    kernel[(B * C * n_tiles,)](grad, x, dx, fu, fd, alpha, b, p_arg, p_den, C, T, n_tiles,
                               HAS_BETA=beta is not None, LOGSCALE=logscale, **meta)
    return (dx, *parameter_grads(p_arg.sum((0, 2)), p_den.sum((0, 2)), alpha, beta, logscale))


# ---------------------------------------------------------------- which path runs

_WARNED: set[str] = set()


def _unsupported(x: Tensor, up_filter: Tensor, down_filter: Tensor, up_ratio: int,
                 down_ratio: int) -> Optional[str]:
    """Why the fused kernels cannot run this configuration (None when they can)."""
    if up_ratio != 2 or down_ratio != 2:
        return f"up_ratio={up_ratio}, down_ratio={down_ratio} (the fused kernels handle 2 and 2)"
    for name, f in (("up", up_filter), ("down", down_filter)):
        k = f.numel()
        if k % 2 or not 2 <= k <= MAX_KERNEL:
            return f"{name} filter of {k} taps (the fused kernels handle even sizes 2..{MAX_KERNEL})"
        lo, hi = _span(k)
        if VARIANT == "gather" and hi - lo > GATHER_W // 2:
            return f"{name} filter of {k} taps with GATHER_W={GATHER_W} (its halo must fit the window)"
    if x.dtype not in _FUSED_DTYPES:
        return f"{x.dtype} input (the fused kernels compute in fp32 for fp32/fp16/bf16 inputs)"
    return None


def _fused(x: Tensor, up_filter: Tensor, down_filter: Tensor, up_ratio: int, down_ratio: int) -> bool:
    """True when the Triton kernels run; warns once per unsupported configuration otherwise."""
    if not use_triton(x):
        return False
    why = _unsupported(x, up_filter, down_filter, up_ratio, down_ratio)
    if why is None:
        return True
    if why not in _WARNED:
        _WARNED.add(why)
        warnings.warn(f"vocoder anti_alias_activation: no fused kernel for {why}; using the "
                      "plain-PyTorch reference (same numbers, more time and memory)", stacklevel=3)
    return False


# ---------------------------------------------------------------- torch.library registration


def _forward(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor, beta: Optional[Tensor],
             logscale: bool, up_ratio: int, down_ratio: int) -> Tensor:
    """The op's forward: the fused kernel where it applies, else the reference."""
    if _fused(x, up_filter, down_filter, up_ratio, down_ratio):
        return _launch_forward(x, up_filter, down_filter, alpha, beta, logscale)
    y = reference.anti_alias_activation(x, up_filter, down_filter, alpha, beta, logscale,
                                        up_ratio, down_ratio)
    return y.contiguous()


@torch.library.custom_op("vocoder::anti_alias_activation", mutates_args=())
def anti_alias_activation_op(x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                             beta: Optional[Tensor], logscale: bool, up_ratio: int,
                             down_ratio: int) -> Tensor:
    """Upsample → Snake (beta None) / SnakeBeta → low-pass + downsample, on (B, C, T)."""
    return _forward(x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio)


@anti_alias_activation_op.register_fake
def _(x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio):
    B, C, T = x.shape
    return x.new_empty((B, C, reference.anti_alias_output_length(T, up_ratio, down_ratio)))


def _backward_values(grad: Tensor, x: Tensor, up_filter: Tensor, down_filter: Tensor, alpha: Tensor,
                     beta: Optional[Tensor], logscale: bool, up_ratio: int,
                     down_ratio: int) -> tuple[Tensor, Tensor, Tensor]:
    """The backward op's body: (dx, dα, dβ), dβ empty for Snake."""
    if _fused(x, up_filter, down_filter, up_ratio, down_ratio):
        return _launch_backward(grad, x, up_filter, down_filter, alpha, beta, logscale)
    dx, d_alpha, d_beta = reference.anti_alias_activation_backward(
        grad, x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio)
    return dx.contiguous(), d_alpha, alpha.new_empty(0) if d_beta is None else d_beta


@torch.library.custom_op("vocoder::anti_alias_activation_backward", mutates_args=())
def anti_alias_activation_backward_op(grad: Tensor, x: Tensor, up_filter: Tensor,
                                      down_filter: Tensor, alpha: Tensor, beta: Optional[Tensor],
                                      logscale: bool, up_ratio: int,
                                      down_ratio: int) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, dα, dβ); dβ is empty for Snake."""
    return _backward_values(grad, x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio)


@anti_alias_activation_backward_op.register_fake
def _(grad, x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio):
    return (x.new_empty(x.shape), torch.empty_like(alpha),
            alpha.new_empty(0) if beta is None else torch.empty_like(beta))


def _setup_context(ctx, inputs, output):
    x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio = inputs
    ctx.save_for_backward(x, up_filter, down_filter, alpha, beta)
    ctx.config = (logscale, up_ratio, down_ratio)


def _backward(ctx, grad):
    x, up_filter, down_filter, alpha, beta = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph=True: the differentiable closed form, for double backward
        dx, d_alpha, d_beta = reference.anti_alias_activation_backward(
            grad, x, up_filter, down_filter, alpha, beta, *ctx.config)
    else:  # the plain function in eager mode (eager_dispatch: no dispatch cost); the op where compile traces
        values = _backward_values if getattr(ctx, "eager", False) else anti_alias_activation_backward_op
        dx, d_alpha, d_beta = values(grad, x, up_filter, down_filter, alpha, beta, *ctx.config)
    return dx, None, None, d_alpha, (d_beta if beta is not None else None), None, None, None


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
                          down_ratio: int = 2) -> Tensor:
    """BigVGAN's Activation1d as one fused op on x of shape (B, C, T): upsample by `up_ratio`
    (Kaiser-sinc `up_filter`, replicate padding) → Snake (β None) or SnakeBeta with per-channel
    α, β (logs if `logscale`) → low-pass `down_filter` and downsample by `down_ratio`.

    Filters are shape (K,) or (1, 1, K) (the modules' buffers); they get no gradient. Output in
    x's dtype, arithmetic in fp32; parameter gradients in the parameters' dtype."""
    check_floating(x, "anti_alias_activation")
    _check(x, up_filter, down_filter, alpha, beta, up_ratio, down_ratio)
    return _apply(x, up_filter, down_filter, alpha, beta, logscale, up_ratio, down_ratio)
