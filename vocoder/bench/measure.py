"""Timing and memory measurement: medians of timed runs after warm-up, peak device allocations.

On CUDA, times are CUDA-event medians (`triton.testing.do_bench`) and peaks come from the caching
allocator; on the CPU (smoke runs), times are wall-clock medians and there is no allocator peak
(None): `vocoder.bench.saved` accounts what autograd keeps on any device.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import torch


def median_ms(fn: Callable[[], object], grad_to_none: list[torch.Tensor] | None = None,
              device: str | torch.device = "cuda", cpu_repeats: int = 3) -> float:
    """Median time of `fn` in milliseconds, after warm-up; gradients in `grad_to_none` reset each run."""
    if torch.device(device).type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=50, rep=300, grad_to_none=grad_to_none,
                                             return_mode="median"))
    times = []
    for i in range(cpu_repeats + 1):  # the first run is the warm-up
        for t in grad_to_none or ():
            t.grad = None
        start = time.perf_counter()
        fn()
        if i:
            times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_mib(fn: Callable[[], object], device: str | torch.device = "cuda") -> float | None:
    """Peak device memory allocated while `fn` runs, above what was allocated before, in MiB
    (None on the CPU, which has no allocator statistics)."""
    if torch.device(device).type != "cuda":
        fn()
        return None
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def copy_bandwidth_gbs(n_bytes: int = 2**30, device: str | torch.device = "cuda") -> float:
    """Copy bandwidth on `device`, counting bytes read plus bytes written (GB/s): the ceiling a
    memory-bound kernel is compared with."""
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), device=device)
    return 2 * n_bytes / (ms * 1e-3) / 1e9


def release(device: str | torch.device) -> None:
    """Free what the last measurement left in the allocator's cache."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def guarded(fn: Callable[[], object]) -> object:
    """Run a measurement; an out-of-memory error is recorded as 'OOM' rather than ending the run."""
    try:
        return fn()
    except torch.OutOfMemoryError:
        gc.collect()
        torch.cuda.empty_cache()
        return "OOM"
