"""Kernel suite: Snake / SnakeBeta forward and backward, fused vs eager vs torch.compile'd eager.

Each row is measured side by side in one process with fresh random inputs; the floor is the bytes
the op must move (fwd: read x, write y; bwd: read x and dy, write dx) over the measured copy
bandwidth of this GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..kernels import reference, snake_beta
from ..kernels import snake as fused_snake
from .measure import copy_bandwidth_gbs, guarded, median_ms, peak_mib

SNAKE_SHAPES = [(50, 48, 160000)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _snake_variants(use_beta: bool) -> dict[str, Callable]:
    def eager(x, a, b):
        return reference.snake(x, a, b if use_beta else None, 1, False)

    def fused(x, a, b):
        return snake_beta(x, a, b) if use_beta else fused_snake(x, a)

    return {"eager": eager, "compiled": torch.compile(eager, fullgraph=True), "fused": fused}


def snake_rows(shape: tuple[int, ...], dtype_name: str, use_beta: bool, bandwidth: float) -> list[dict]:
    """Forward time, backward time and fwd+bwd peak memory of each variant at one shape."""
    dtype = DTYPES[dtype_name]
    x = torch.randn(shape, device="cuda", dtype=dtype).mul_(3).requires_grad_()
    a = (0.2 + torch.rand(shape[1], device="cuda")).requires_grad_()
    b = (0.2 + torch.rand(shape[1], device="cuda")).requires_grad_()
    g = torch.randn_like(x)
    tensor_bytes = x.numel() * x.element_size()
    fwd_floor = 2 * tensor_bytes / bandwidth / 1e6
    bwd_floor = 3 * tensor_bytes / bandwidth / 1e6
    rows = []
    for name, fn in _snake_variants(use_beta).items():
        with torch.no_grad():
            fwd = guarded(lambda: median_ms(lambda: fn(x, a, b)))

        def backward_ms():
            y = fn(x, a, b)
            ms = median_ms(lambda: y.backward(g, retain_graph=True), grad_to_none=[x, a, b])
            del y
            return ms

        bwd = guarded(backward_ms)
        peak = guarded(lambda: peak_mib(lambda: fn(x, a, b).backward(g)))
        x.grad = a.grad = b.grad = None
        rows.append({
            "op": "snakebeta" if use_beta else "snake", "shape": "x".join(map(str, shape)),
            "dtype": dtype_name, "variant": name,
            "fwd_ms": fwd, "fwd_vs_floor": fwd / fwd_floor if isinstance(fwd, float) else "",
            "bwd_ms": bwd, "bwd_vs_floor": bwd / bwd_floor if isinstance(bwd, float) else "",
            "fwd+bwd_peak_MiB": peak,
            "peak_vs_x": peak * 2**20 / tensor_bytes if isinstance(peak, float) else "",
        })
    return rows


def run(quick: bool = False) -> list[dict]:
    """All kernel rows; `quick` uses small shapes (for smoke tests)."""
    bandwidth = copy_bandwidth_gbs(2**26 if quick else 2**30)
    shapes = [(2, 8, 4096)] if quick else SNAKE_SHAPES
    rows = []
    for shape in shapes:
        for dtype_name in DTYPES:
            for use_beta in (False, True):
                rows += snake_rows(shape, dtype_name, use_beta, bandwidth)
    for r in rows:
        r["copy_GBps"] = bandwidth
    return rows
