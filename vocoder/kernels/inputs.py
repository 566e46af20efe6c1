"""The input check of every public fused op: a floating-point torch.Tensor. Without it an int64 or
bool tensor would come back truncated to its dtype, and a numpy array would fail deep inside."""

from __future__ import annotations

from typing import Any

import torch


def check_floating(x: Any, op: str) -> None:
    """Raise a TypeError naming `op` unless `x` is a floating-point torch.Tensor (complex, integer
    and bool tensors are refused, as torch's own activations refuse them)."""
    if not isinstance(x, torch.Tensor):
        kind = f"{type(x).__module__}.{type(x).__qualname__}".removeprefix("builtins.")
        hint = " (torch.from_numpy converts it)" if type(x).__module__ == "numpy" else ""
        raise TypeError(f"{op}: expected a torch.Tensor, got a {kind}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point tensor (float32, bfloat16, float16, ...), got "
                        f"{x.dtype}; convert it first, e.g. x.float()")
