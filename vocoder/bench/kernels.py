"""Kernel suite: Snake, SnakeBeta and the anti-aliased activation, fused vs eager vs torch.compile'd eager
(and, for the anti-aliased forward on CUDA, NVIDIA BigVGAN's CUDA kernel: `vocoder.bench.nvidia_anti_alias`).

Rows are measured side by side in one process on fresh random inputs: forward, backward and
forward + backward medians; the achieved bandwidth over the bytes the op must move (forward reads x
and writes y; backward reads x and dy and writes dx) against this device's measured copy ceiling;
the fwd+bwd peak allocation above the inputs (CUDA) and what autograd saves for backward (any
device, `vocoder.bench.saved`), both as multiples of x.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import torch

from ..kernels import anti_alias_activation, filters, reference, snake_beta
from ..kernels import snake as fused_snake
from .measure import copy_bandwidth_gbs, guarded, median_ms, peak_mib, release
from .saved import SavedTensorLedger

OPS = ("snake", "snakebeta", "anti_alias")
SHAPES = {"snake": (50, 48, 160000), "snakebeta": (50, 48, 160000), "anti_alias": (4, 96, 65536)}
QUICK_SHAPES = {"snake": (2, 8, 1000), "snakebeta": (2, 8, 1000), "anti_alias": (2, 8, 1000)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}  # the suite's; op_rows takes any float dtype
# an op's function of (x, α, β) → y; the anti-aliased op uses BigVGAN's filters and log-scale α, β
OpFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
FORWARD_ONLY = ("nvidia",)  # implementations without a backward: their backward columns are n/a


def _filters(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    taps = filters.resampling_filter(2).to(device)
    return taps, taps.clone()


def implementations(op: str, device: torch.device, compiled: bool = True, nvidia: bool = False) -> dict[str, OpFn]:
    """name → function: the eager reference (plain autograd ops), its torch.compile, the fused op, and
    with `nvidia` (anti-aliased op, CUDA) NVIDIA's CUDA kernel."""
    if op == "anti_alias":
        up, down = _filters(device)

        def eager(x, a, b):
            return reference.anti_alias_activation(x, up, down, a, b, True)

        def fused(x, a, b):
            return anti_alias_activation(x, up, down, a, b, True)
    else:
        use_beta = op == "snakebeta"

        def eager(x, a, b):
            return reference.snake(x, a, b if use_beta else None, 1, False)

        def fused(x, a, b):
            return snake_beta(x, a, b) if use_beta else fused_snake(x, a)

    impls = {"eager": eager}
    if compiled:
        impls["compiled"] = torch.compile(eager, fullgraph=True)
    impls["fused"] = fused
    if nvidia and op == "anti_alias":
        from .nvidia_anti_alias import nvidia_extension

        kernel = nvidia_extension()

        def theirs(x, a, b):
            dt = x.dtype
            return kernel.forward(x.detach().contiguous(), up.to(dt), down.to(dt), a.detach().to(dt), b.detach().to(dt))
        impls["nvidia"] = theirs
    return impls


def make_inputs(op: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """x ~ 3·N(0, 1), per-channel α, β (logs around 0 for the anti-aliased op), dy ~ N(0, 1); the seed
    follows from the case so every variant of a row sees the same fresh inputs."""
    gen = torch.Generator(device=device).manual_seed(zlib.crc32(f"{op}{shape}{dtype}".encode()))
    channels = shape[1]
    x = (3 * torch.randn(shape, device=device, generator=gen)).to(dtype).requires_grad_()
    if op == "anti_alias":
        a, b = (0.5 * torch.randn(channels, device=device, generator=gen) for _ in range(2))
    else:
        a, b = (0.2 + torch.rand(channels, device=device, generator=gen) for _ in range(2))
    g = torch.randn(shape, device=device, generator=gen).to(dtype)
    return x, a.requires_grad_(), b.requires_grad_(), g


def saved_bytes(fn: OpFn, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, g: torch.Tensor) -> int:
    """Bytes autograd keeps between this op's forward and backward (α, β themselves not counted)."""
    with SavedTensorLedger(resident=(a, b)) as ledger:
        fn(x, a, b).backward(g)
    return ledger.peak_bytes


def op_rows(op: str, shape: tuple[int, ...], dtype: torch.dtype, impls: dict[str, OpFn], bandwidth: float,
            device: torch.device) -> list[dict]:
    """One row per implementation of `op` at one shape and dtype."""
    x, a, b, g = make_inputs(op, shape, dtype, device)
    dtype_name = next((k for k, v in DTYPES.items() if v == dtype), str(dtype).removeprefix("torch."))
    x_bytes = x.numel() * x.element_size()
    moved = {"fwd": 2 * x_bytes, "bwd": 3 * x_bytes, "fwd+bwd": 5 * x_bytes}
    rows = []
    for name, fn in impls.items():
        def forward():
            with torch.no_grad():
                return fn(x, a, b)

        def backward_ms():
            y = fn(x, a, b)
            return median_ms(lambda: y.backward(g, retain_graph=True), [x, a, b], device)

        times = {"fwd": guarded(lambda: median_ms(forward, device=device))}
        peak = saved = None
        if name not in FORWARD_ONLY:
            times["bwd"] = guarded(backward_ms)
            times["fwd+bwd"] = guarded(lambda: median_ms(lambda: fn(x, a, b).backward(g), [x, a, b], device))
            peak = guarded(lambda: peak_mib(lambda: fn(x, a, b).backward(g), device))
            saved = saved_bytes(fn, x, a, b, g)
        times = {part: times.get(part) for part in moved}
        x.grad = a.grad = b.grad = None
        row = {"op": op, "shape": "x".join(map(str, shape)), "dtype": dtype_name, "impl": name}
        for part, ms in times.items():
            row[f"{part}_ms"] = ms
        for part, ms in times.items():
            row[f"{part}_GBps"] = moved[part] / (ms * 1e-3) / 1e9 if isinstance(ms, float) else ms
        row["copy_GBps"] = bandwidth
        row["peak_vs_x"] = peak * 2**20 / x_bytes if isinstance(peak, float) else peak
        row["saved_vs_x"] = saved / x_bytes if saved is not None else None
        rows.append(row)
        release(device)
    return rows


def run(quick: bool = False, device: str = "cuda", ops: tuple[str, ...] = OPS,
        shapes: dict[str, tuple[int, ...]] | None = None, compiled: bool | None = None,
        nvidia: bool | None = None) -> list[dict]:
    """All kernel rows; `quick` uses small shapes. torch.compile is left out on the CPU unless asked;
    NVIDIA's kernel is in where it can be built (`nvidia_anti_alias.available()`) unless nvidia=False."""
    from .nvidia_anti_alias import available

    dev = torch.device(device)
    shapes = shapes or (QUICK_SHAPES if quick else SHAPES)
    compiled = dev.type == "cuda" if compiled is None else compiled
    nvidia = dev.type == "cuda" and available() if nvidia is None else nvidia
    bandwidth = copy_bandwidth_gbs(2**26 if quick or dev.type != "cuda" else 2**30, dev)
    rows = []
    for op in ops:
        impls = implementations(op, dev, compiled, nvidia)
        for dtype in DTYPES.values():
            rows += op_rows(op, shapes[op], dtype, impls, bandwidth, dev)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Bars per (op, dtype): fwd+bwd time and what is kept for backward (peak on CUDA, saved elsewhere)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys((r["op"], r["dtype"]) for r in rows))
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    memory_key = "peak_vs_x" if any(isinstance(r["peak_vs_x"], float) for r in rows) else "saved_vs_x"
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(impls)
    for i, impl in enumerate(impls):
        for ax, key in zip(axes, ("fwd+bwd_ms", memory_key)):
            values = [next((r[key] for r in rows if (r["op"], r["dtype"]) == c and r["impl"] == impl), None)
                      for c in cases]
            xs = [j + i * width for j, v in enumerate(values) if isinstance(v, float)]
            ax.bar(xs, [v for v in values if isinstance(v, float)], width, label=impl)
    labels = {"fwd+bwd_ms": "forward + backward (ms)", "peak_vs_x": "fwd+bwd peak memory (× x)",
              "saved_vs_x": "saved for backward (× x)"}
    for ax, key in zip(axes, ("fwd+bwd_ms", memory_key)):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cases))], [f"{o}\n{d}" for o, d in cases])
        ax.set_ylabel(labels[key])
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
