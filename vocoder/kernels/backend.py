"""Which implementation runs an op: Triton on CUDA tensors, the plain-PyTorch reference on CPU.

`VOCODER_BACKEND=torch|triton` overrides the automatic choice. Triton on CPU tensors needs Triton's
interpreter (`TRITON_INTERPRET=1`, set before `vocoder` is imported); without it the request fails
loudly rather than silently falling back. Where Triton is chosen but a fused kernel cannot take the
input (a dtype outside FUSED_DTYPES, or a configuration the op names), both ops fall back to the
reference with one warning per op and reason (`runs_fused`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Optional

import torch

try:  # Triton ships with Linux builds of torch; elsewhere the reference path is used.
    import triton  # noqa: F401

    HAS_TRITON = True
except ImportError:  # pragma: no cover - exercised only where triton is absent
    HAS_TRITON = False

BACKENDS = ("auto", "torch", "triton")


def interpreter_enabled() -> bool:
    """True when Triton kernels run through Triton's CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def use_triton(x: torch.Tensor) -> bool:
    """Decide, for one call on tensor `x`, whether the Triton kernel runs (else the reference)."""
    choice = os.environ.get("VOCODER_BACKEND", "auto").lower()
    if choice not in BACKENDS:
        raise ValueError(f"VOCODER_BACKEND={choice!r} is not one of {', '.join(BACKENDS)}")
    if choice == "torch":
        return False
    if choice == "auto":
        return HAS_TRITON and x.is_cuda
    if not HAS_TRITON:
        raise RuntimeError("VOCODER_BACKEND=triton, but the triton package is not installed")
    if x.is_cuda or (interpreter_enabled() and x.device.type == "cpu"):
        return True
    raise RuntimeError(
        f"VOCODER_BACKEND=triton, but the input is on {x.device}: Triton kernels need a CUDA tensor, "
        "or TRITON_INTERPRET=1 (set before importing vocoder) to run them on the CPU"
    )


# The fused kernels load fp32/fp16/bf16 and compute in fp32; fp64 inputs take the reference, in fp64.
FUSED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_WARNED: set[str] = set()


def runs_fused(op: str, x: torch.Tensor, unsupported: Optional[Callable[[], Optional[str]]] = None) -> bool:
    """True when op's Triton kernel runs on `x`. Where `use_triton` picks Triton but the kernel cannot
    take the input (its dtype, or the reason `unsupported()` gives for the op's own configuration),
    warns once per (op, reason) and returns False: the caller runs the reference."""
    if not use_triton(x):
        return False
    why = None
    if x.dtype not in FUSED_DTYPES:
        why = f"{x.dtype} input (the fused kernels compute in fp32 for fp32/fp16/bf16 inputs)"
    elif unsupported is not None:
        why = unsupported()
    if why is None:
        return True
    key = f"{op}: {why}"
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(f"vocoder {op}: no fused kernel for {why}; using the plain-PyTorch reference "
                      "(same numbers, more time and memory)", stacklevel=4)
    return False


def eager_dispatch(name: str, op: Callable, forward: Callable, setup_context: Callable,
                   backward: Callable) -> Callable[..., torch.Tensor]:
    """How a public entry point calls its op: the torch.library `op` where torch.compile traces; in
    eager mode an autograd.Function built from the op's forward, `setup_context` and backward (the
    op's dispatch costs more CPU time per call than small kernels take on the GPU), or the bare
    forward when nothing needs a gradient. The Function marks `ctx.eager`, so the backward can skip
    the backward op's dispatch too."""
    def run_forward(ctx, *inputs):
        out = forward(*inputs)
        setup_context(ctx, inputs, out)
        ctx.eager = True
        return out

    function = type(name, (torch.autograd.Function,), {"forward": staticmethod(run_forward),
                                                       "backward": staticmethod(backward)})

    def call(*args):
        if torch.compiler.is_compiling():
            return op(*args)
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return function.apply(*args)
        return forward(*args)

    return call
