"""Timing and memory measurement on a CUDA device: medians of event-timed runs, peak allocations."""

from __future__ import annotations

import gc
from collections.abc import Callable

import torch


def median_ms(fn: Callable[[], object], grad_to_none: list[torch.Tensor] | None = None) -> float:
    """Median time of `fn` in milliseconds (warm-up first; CUDA events via triton's do_bench)."""
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=50, rep=300, grad_to_none=grad_to_none,
                                         return_mode="median"))


def peak_mib(fn: Callable[[], object]) -> float:
    """Peak device memory allocated while `fn` runs, above what was allocated before, in MiB."""
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def copy_bandwidth_gbs(n_bytes: int = 2**30) -> float:
    """Device-to-device copy bandwidth, counting bytes read plus bytes written (GB/s)."""
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src))
    del src, dst
    return 2 * n_bytes / (ms * 1e-3) / 1e9


def guarded(fn: Callable[[], float]) -> float | str:
    """Run a measurement; an out-of-memory error is recorded as 'OOM' rather than ending the run."""
    try:
        return fn()
    except torch.OutOfMemoryError:
        gc.collect()
        torch.cuda.empty_cache()
        return "OOM"
