"""Forward of the fused anti-aliased SnakeBeta: ours vs NVIDIA BigVGAN's CUDA kernel (inference only).

`python -m vocoder.bench.nvidia_anti_alias`: needs the test-only `bigvgan` package importable with
its CUDA extension buildable for this GPU (its build script names only older architectures, so the
device run builds it from a scratch copy with sm_90 added; that copy is never part of this repo).
Prints the max abs difference between the two and a markdown table of forward medians.
"""

from __future__ import annotations

import torch

from ..layers import AntiAliasActivation1d, SnakeBeta
from .measure import median_ms
from .report import environment, markdown

SHAPES = [(4, 96, 65536), (1, 1536, 16384), (16, 24, 262144)]


def main() -> None:
    from bigvgan.activations import SnakeBeta as TheirSnakeBeta
    from bigvgan.alias_free_activation.cuda.activation1d import Activation1d as TheirActivation1d

    rows = []
    for shape in SHAPES:
        channels = shape[1]
        theirs = TheirActivation1d(TheirSnakeBeta(channels, alpha_logscale=True), fused=True).cuda()
        with torch.no_grad():
            theirs.act.alpha.normal_(0, 0.3)
            theirs.act.beta.normal_(0, 0.3)
        ours = AntiAliasActivation1d(SnakeBeta(channels, logscale=True)).cuda()
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(shape, device="cuda")
        with torch.no_grad():
            diff = (ours(x) - theirs(x)).abs().max().item()
            t_ours = median_ms(lambda: ours(x))
            t_theirs = median_ms(lambda: theirs(x))
        rows.append({"shape": "x".join(map(str, shape)), "dtype": "fp32", "ours_fwd_ms": t_ours,
                     "nvidia_cuda_fwd_ms": t_theirs, "speedup": t_theirs / t_ours, "max_abs_diff": diff})
    print(environment())
    print(markdown(rows))


if __name__ == "__main__":
    main()
