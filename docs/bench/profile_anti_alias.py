"""Kernels (name, count, total µs) of one anti-aliased fwd+bwd per dtype under the torch profiler, and the
do_bench medians of fwd, bwd and fwd+bwd: where a dtype's fwd+bwd time goes (issue 17, bf16 vs fp32)."""

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from vocoder.bench.kernels import implementations, make_inputs
from vocoder.bench.measure import median_ms

shape = tuple(int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "4,96,65536").split(","))
fused = implementations("anti_alias", torch.device("cuda"), compiled=False)["fused"]
for dtype in (torch.float32, torch.bfloat16):
    x, a, b, g = make_inputs("anti_alias", shape, dtype, torch.device("cuda"))
    for _ in range(3):
        fused(x, a, b).backward(g)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            x.grad = a.grad = b.grad = None
            fused(x, a, b).backward(g)
        torch.cuda.synchronize()
    print(f"== {dtype} {shape}: 5 × fwd+bwd")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12))
    y = fused(x, a, b)
    print("fwd+bwd", median_ms(lambda: fused(x, a, b).backward(g), [x, a, b]),
          "bwd", median_ms(lambda: y.backward(g, retain_graph=True), [x, a, b]))
