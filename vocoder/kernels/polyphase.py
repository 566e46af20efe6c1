"""Triton building blocks of the fused anti-aliased activation: polyphase stencils of a ratio-2
resampling filter, with BigVGAN's replicate padding folded into the taps at the ends of a row.

Sample i = 2n + p of the 2× signal is phase p ∈ {0, 1} at position n; an even filter w of K taps
(H = K/2 − 1) touches positions n − e for e in `span(K)` = [LO, HI] through taps 2e + p + H.
"""

from __future__ import annotations

import math

import triton
import triton.language as tl


def span(k: int) -> tuple[int, int]:
    """[LO, HI] of the stencil offsets for an even filter of length k (ratio 2): taps 2e + p + H."""
    h = k // 2 - 1
    lo = min(math.ceil((-p - h) / 2) for p in (0, 1))
    hi = max((k - 1 - p - h) // 2 for p in (0, 1))
    return lo, hi


@triton.jit
def tap(w_ptr, t: tl.constexpr, K: tl.constexpr):
    """Filter tap w[t] in fp32; 0 for t outside [0, K)."""
    value = 0.0
    if (t >= 0) and (t < K):
        value = tl.load(w_ptr + t).to(tl.float32)
    return value


@triton.jit
def tap_totals(w_ptr, K: tl.constexpr):
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
def stencil(src_row, n, T, w_ptr, K: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
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
        tot_even, tot_odd = tap_totals(w_ptr, K)
        total = tot_even + tot_odd
    for i in tl.static_range(HI - LO + 1):
        e = LO + i
        t0 = 2 * e + H
        t1 = 2 * e + 1 + H
        use0 = P0 and (t0 >= 0) and (t0 < K)
        use1 = P1 and (t1 >= 0) and (t1 < K)
        w0 = tap(w_ptr, t0, K)
        w1 = tap(w_ptr, t1, K)
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
def shift_term(v0, v1, n, T, w_ptr, d: tl.constexpr, K: tl.constexpr, EDGE: tl.constexpr,
                FOLD: tl.constexpr, s0, s1, tot_even, tot_odd):
    """P_d[n] = Σ_p c_p·v_p[n] with c_p = w[2d + p + H], plus (EDGE only) the folds of
    FOLD 1 (low-pass; running prefix s0) or FOLD 2 (upsampling, into dx; running same-parity
    prefixes s0, s1, output k = n − d). Call with d ascending; returns (P_d, s0, s1)."""
    H = K // 2 - 1
    t0 = 2 * d + H
    t1 = 2 * d + 1 + H
    w0 = tap(w_ptr, t0, K)
    w1 = tap(w_ptr, t1, K)
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
def fold_totals(w_ptr, K: tl.constexpr, EDGE: tl.constexpr):
    """Initial fold state (s0, s1, Σ w[even], Σ w[odd]) for a tap loop (zeros unless EDGE)."""
    tot_even = 0.0
    tot_odd = 0.0
    if EDGE:
        tot_even, tot_odd = tap_totals(w_ptr, K)
    return 0.0, 0.0, tot_even, tot_odd


# ---------------------------------------------------------------- the (R, W) window tiling
# A program computes R windows of W positions; window r starts at position start + r·OUT_W + LO and
# writes OUT_W = W − (HI − LO) outputs, its neighbours overlapping it by the stencil's halo HI − LO.
# Shifted sums along a window are `tl.gather`s (warp shuffles when a window is one warp).


@triton.jit
def windows(n_tiles, LO: tl.constexpr, HI: tl.constexpr, R: tl.constexpr, W: tl.constexpr):
    """This program's row (n_tiles programs a row), its first output, the lanes (1, W) and the
    window positions n (R, W)."""
    OUT_W = W + LO - HI
    pid = tl.program_id(0)
    row = pid // n_tiles
    start = (pid - row * n_tiles) * (R * OUT_W)
    lanes = tl.arange(0, W)[None, :]
    n = start + tl.arange(0, R)[:, None] * OUT_W + lanes + LO
    return row, start, lanes, n


@triton.jit
def gathered_sum(v0, v1, n, lanes, T, w_ptr, K: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
                 EDGE: tl.constexpr, FOLD: tl.constexpr, R: tl.constexpr, W: tl.constexpr):
    """out[lane] = Σ_d P_d[lane + d − LO] over the window (P_d from `shift_term` with FOLD): the
    second stencil of a stage, read at the outputs each lane writes."""
    acc = tl.zeros((R, W), tl.float32)
    s0, s1, tot_even, tot_odd = fold_totals(w_ptr, K, EDGE)
    for i in tl.static_range(HI - LO + 1):
        d = LO + i
        p, s0, s1 = shift_term(v0, v1, n, T, w_ptr, d, K, EDGE, FOLD, s0, s1, tot_even, tot_odd)
        src = tl.broadcast_to(tl.minimum(lanes + (d - LO), W - 1), (R, W))
        acc += tl.gather(p, src, 1)
    return acc


@triton.jit
def store_windows(row_ptr, values, n, lanes, T, LO: tl.constexpr, HI: tl.constexpr,
                  W: tl.constexpr, EDGE: tl.constexpr):
    """Write each window's OUT_W outputs (lane l writes output n − LO), masked at the row's end (EDGE)."""
    out = n - LO
    mask = lanes < W + LO - HI
    if EDGE:
        mask = mask & (out < T)
    tl.store(row_ptr + out, values.to(row_ptr.dtype.element_ty), mask=mask)
