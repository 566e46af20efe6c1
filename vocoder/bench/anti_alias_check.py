"""GPU check and benchmark of the fused anti-aliased activation (upsample ×2 → SnakeBeta → low-pass ↓2).

    python -m vocoder.bench.anti_alias_check [--quick] [--sweep]

1. Accuracy: the fused kernels against a float64 oracle computed on the GPU from the same rounded
   inputs (the plain-PyTorch reference in fp64: forward, and the closed-form backward), at real
   sizes and odd lengths, fp32/fp16/bf16; values, dx, dα, dβ.
2. Timing and memory at the real sizes, as the kernel suite measures them
   (`vocoder.bench.kernels.op_rows`): the fused op, the eager reference and the torch.compile'd
   reference.
3. With --sweep, tile choices (`AntiAliasTiles`: R windows × W positions, warps) at the main shape,
   passed to the op as its `tiles` argument.

Prints markdown tables (the timing table last) and writes them to $OUT/anti_alias.md when OUT is set.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from pathlib import Path

import torch

from ..kernels import AntiAliasTiles, anti_alias_activation, filters, reference
from . import kernels
from .measure import copy_bandwidth_gbs, guarded, median_ms
from .report import environment, markdown

DEVICE = "cuda"
MAIN_SHAPE = (4, 96, 65536)
REAL_SHAPES = [MAIN_SHAPE, (1, 1536, 16384), (16, 24, 262144)]
ODD_SHAPES = [(2, 3, 1), (2, 5, 13), (3, 4, 1001), (1, 8, 12347), (2, 2, 416 * 3 + 5)]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# relative-norm tolerances vs the float64 oracle (as in tests/numerics.py)
VALUE_TOL = {"fp32": 1e-5, "fp16": 1e-3, "bf16": 8e-3}
PARAM_GRAD_TOL = 1e-4
# (rows, width, warps) tiles timed by --sweep; the shipped AntiAliasTiles() is among them
SWEEP = [(8, 32, 4), (16, 32, 4), (32, 32, 8), (16, 32, 8), (8, 64, 4), (16, 64, 4)]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("inf")
    denom = b.norm().item()
    return (a - b).norm().item() / denom if denom > 0 else (a - b).norm().item()


def ratio2_filters() -> tuple[torch.Tensor, torch.Tensor]:
    f = filters.resampling_filter(2).to(DEVICE)
    return f, f.clone()


def make_inputs(shape, dtype, use_beta=True, logscale=True, seed=0):
    """Fresh random inputs: x ~ 3·N(0, 1), per-channel α, β (logs around 0 for logscale), dy ~ N(0, 1)."""
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    channels = shape[1]
    x = (3 * torch.randn(shape, device=DEVICE, generator=gen)).to(dtype)
    g = torch.randn(shape, device=DEVICE, generator=gen).to(dtype)
    if logscale:
        a = 0.5 * torch.randn(channels, device=DEVICE, generator=gen)
        b = 0.5 * torch.randn(channels, device=DEVICE, generator=gen) if use_beta else None
    else:
        a = 0.2 + torch.rand(channels, device=DEVICE, generator=gen)
        b = 0.2 + torch.rand(channels, device=DEVICE, generator=gen) if use_beta else None
    return x, a, b, g


def fused_values_and_grads(x, fu, fd, a, b, g, logscale):
    xr = x.detach().clone().requires_grad_()
    ar = a.detach().clone().requires_grad_()
    br = None if b is None else b.detach().clone().requires_grad_()
    y = anti_alias_activation(xr, fu, fd, ar, br, logscale)
    y.backward(g)
    return y.detach(), xr.grad, ar.grad, None if br is None else br.grad


def oracle(x, fu, fd, a, b, g, logscale):
    """Float64 on the GPU from the same (rounded) inputs: reference forward and closed-form backward."""
    d = torch.float64
    x64, a64, g64 = x.to(d), a.to(d), g.to(d)
    b64 = None if b is None else b.to(d)
    y = reference.anti_alias_activation(x64, fu.to(d), fd.to(d), a64, b64, logscale)
    dx, da, db = reference.anti_alias_activation_backward(g64, x64, fu.to(d), fd.to(d), a64, b64, logscale)
    return y, dx, da, db


def accuracy_rows(quick: bool) -> list[dict]:
    fu, fd = ratio2_filters()
    rows = []
    shapes = [(2, 8, 4096)] + ODD_SHAPES[:2] if quick else REAL_SHAPES + ODD_SHAPES
    cases = [(s, dn, True, True) for s in shapes for dn in DTYPES]
    cases.append(((2, 5, 13), "fp32", False, False))  # Snake, linear parameters
    for seed, (shape, dname, use_beta, logscale) in enumerate(cases):
        dtype = DTYPES[dname]
        x, a, b, g = make_inputs(shape, dtype, use_beta, logscale, seed)
        ref = oracle(x, fu, fd, a, b, g, logscale)
        out = fused_values_and_grads(x, fu, fd, a, b, g, logscale)
        errs = [rel_err(o, r) if r is not None else 0.0 for o, r in zip(out, ref)]
        ok = (errs[0] < VALUE_TOL[dname] and errs[1] < VALUE_TOL[dname]
              and errs[2] < PARAM_GRAD_TOL and errs[3] < PARAM_GRAD_TOL
              and out[0].dtype == dtype and out[1].dtype == dtype)
        rows.append({
            "shape": "x".join(map(str, shape)), "dtype": dname,
            "act": ("snakebeta" if use_beta else "snake") + ("-log" if logscale else ""),
            "err_y": errs[0], "err_dx": errs[1], "err_dalpha": errs[2],
            "err_dbeta": errs[3] if use_beta else "", "max_abs_y": (out[0].double() - ref[0]).abs().max().item(),
            "ok": "yes" if ok else "NO",
        })
        del out, ref, x, a, b, g
        gc.collect()
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
    return rows


def timing_rows(quick: bool, bandwidth: float) -> list[dict]:
    """The kernel suite's rows (`vocoder.bench.kernels.op_rows`): all dtypes at the main shape, fp32
    at the others, torch.compile at the main shape in fp32 only."""
    rows = []
    for shape in [(2, 8, 4096)] if quick else REAL_SHAPES:
        for dname, dtype in DTYPES.items():
            if shape != MAIN_SHAPE and dname != "fp32":
                continue
            impls = kernels.implementations("anti_alias", torch.device(DEVICE),
                                            compiled=shape == MAIN_SHAPE and dname == "fp32")
            rows += kernels.op_rows("anti_alias", shape, dtype, impls, bandwidth, torch.device(DEVICE))
            print(markdown(rows[-len(impls):]), flush=True)
    return rows


def sweep_rows() -> list[dict]:
    """Tile choices at the main shape, fp32 SnakeBeta (logscale)."""
    fu, fd = ratio2_filters()
    x, a, b, g = make_inputs(MAIN_SHAPE, torch.float32, seed=7)
    x.requires_grad_(), a.requires_grad_(), b.requires_grad_()
    rows = []
    for r, w, nw in SWEEP:
        tiles = AntiAliasTiles(rows=r, width=w, warps=nw)

        def forward():
            with torch.no_grad():
                return anti_alias_activation(x, fu, fd, a, b, True, tiles=tiles)

        def step():
            anti_alias_activation(x, fu, fd, a, b, True, tiles=tiles).backward(g)

        rows.append({"tiles": f"rows={r} width={w} warps={nw}" + (" (shipped)" if tiles == AntiAliasTiles() else ""),
                     "fwd_ms": guarded(lambda: median_ms(forward)),
                     "fwd+bwd_ms": guarded(lambda: median_ms(step, grad_to_none=[x, a, b]))})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vocoder.bench.anti_alias_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes only (smoke test)")
    parser.add_argument("--sweep", action="store_true", help="also time tile choices at the main shape")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("this check runs the Triton kernels on a CUDA device")
    start = time.time()
    env = environment()
    header = "anti_alias_check: " + ", ".join(f"{k} {v}" for k, v in env.items())
    bandwidth = copy_bandwidth_gbs(2**26 if args.quick else 2**30)
    acc = accuracy_rows(args.quick)
    print("\n## accuracy vs float64 oracle (relative norm errors)\n\n" + markdown(acc), flush=True)
    sweep = sweep_rows() if args.sweep else []
    timing = timing_rows(args.quick, bandwidth)
    parts = [header, f"copy bandwidth {bandwidth:.0f} GB/s; total {time.time() - start:.0f} s",
             "## accuracy vs float64 oracle (relative norm errors)", markdown(acc)]
    if sweep:
        parts += ["## tile sweep, fp32 SnakeBeta " + "x".join(map(str, MAIN_SHAPE)), markdown(sweep)]
    parts += ["## timing (ms, median), bandwidth and memory (the kernel suite's columns)", markdown(timing)]
    text = "\n\n".join(parts) + "\n"
    failed = [r for r in acc if r["ok"] != "yes"]
    if failed:
        text += f"\n**{len(failed)} accuracy rows out of tolerance**\n"
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "anti_alias.md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
