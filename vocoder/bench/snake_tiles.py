"""Sweep the ROWS tiling of the Snake kernels (elements and warps per program) on this GPU.

`python -m vocoder.bench.snake_tiles`: prints fwd/bwd medians per tile, each passed to the op as a
`SnakeTiles` value, so the shipped defaults (`vocoder/kernels/tiles.py`) can be chosen from measurements.
"""

from __future__ import annotations

import torch

from ..kernels import SnakeTiles, snake_beta
from .measure import copy_bandwidth_gbs, median_ms
from .report import markdown

TILES = [(1024, 4), (2048, 4), (2048, 8), (4096, 4), (4096, 8), (8192, 8), (8192, 16)]


def main(shape=(50, 48, 160000)) -> None:
    bandwidth = copy_bandwidth_gbs()
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(shape, device="cuda", dtype=dtype).mul_(3).requires_grad_()
        a = (0.2 + torch.rand(shape[1], device="cuda")).requires_grad_()
        b = (0.2 + torch.rand(shape[1], device="cuda")).requires_grad_()
        g = torch.randn_like(x)
        nbytes = x.numel() * x.element_size()
        for block, warps in TILES:
            tiles = SnakeTiles(forward_block=block, forward_warps=warps, backward_block=block,
                               backward_warps=warps, backward_block_16bit=block, backward_warps_16bit=warps)
            with torch.no_grad():
                fwd = median_ms(lambda: snake_beta(x, a, b, tiles=tiles))
            y = snake_beta(x, a, b, tiles=tiles)
            bwd = median_ms(lambda: y.backward(g, retain_graph=True), grad_to_none=[x, a, b])
            rows.append({"dtype": str(dtype), "block": block, "warps": warps, "fwd_ms": fwd,
                         "fwd_vs_floor": fwd / (2 * nbytes / bandwidth / 1e6), "bwd_ms": bwd,
                         "bwd_vs_floor": bwd / (3 * nbytes / bandwidth / 1e6)})
    print(f"copy bandwidth {bandwidth:.0f} GB/s, shape {shape}")
    print(markdown(rows))


if __name__ == "__main__":
    main()
