"""NVIDIA BigVGAN's CUDA anti-aliased activation (inference only), built for this GPU, as a baseline.

`python -m vocoder.bench.nvidia_anti_alias`: forward of ours vs theirs at three shapes (max abs
difference and medians). `nvidia_extension()` compiles NVIDIA's two source files from the installed
test-only `bigvgan` package (2.4.1) into a scratch folder, for this GPU's architecture only: its own
build script also names sm_70, which CUDA 13 no longer compiles, so importing
`bigvgan.alias_free_activation.cuda.activation1d` fails there. The sources are read where pip put
them and never copied into this repository. `use_nvidia_kernel(model)` swaps every
`AntiAliasActivation1d` of a model for a module that calls NVIDIA's kernel (the infer suite's
"nvidia" rows; the kernel suite's "nvidia" forward).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

from ..layers import AntiAliasActivation1d, SnakeBeta
from .measure import median_ms
from .report import environment, markdown

SHAPES = [(4, 96, 65536), (1, 1536, 16384), (16, 24, 262144)]
_BUILT: dict[str, ModuleType] = {}


def available() -> bool:
    """True where NVIDIA's kernel can be built: a CUDA device, nvcc, and the `bigvgan` package."""
    from torch.utils import cpp_extension

    return (torch.cuda.is_available() and cpp_extension.CUDA_HOME is not None
            and importlib.util.find_spec("bigvgan") is not None)


def nvidia_extension() -> ModuleType:
    """NVIDIA's `anti_alias_activation_cuda` extension (its `forward(x, up, down, α, β)`), compiled
    once per machine and architecture (torch caches the build by source and flags)."""
    major, minor = torch.cuda.get_device_capability()
    arch = f"{major}{minor}"
    if arch not in _BUILT:
        from torch.utils import cpp_extension

        spec = importlib.util.find_spec("bigvgan")
        if spec is None or spec.origin is None:
            raise RuntimeError("NVIDIA's kernel needs the test-only bigvgan package (pip install --no-deps bigvgan==2.4.1)")
        sources = Path(spec.origin).parent / "alias_free_activation" / "cuda"
        build = Path(os.environ.get("TORCH_EXTENSIONS_DIR", tempfile.gettempdir())) / f"nvidia_anti_alias_sm{arch}"
        build.mkdir(parents=True, exist_ok=True)
        _BUILT[arch] = cpp_extension.load(
            name="nvidia_anti_alias_activation_cuda",
            sources=[str(sources / "anti_alias_activation.cpp"), str(sources / "anti_alias_activation_cuda.cu")],
            build_directory=str(build), extra_cflags=["-O3"],
            # NVIDIA's own flags (load.py), with this GPU's architecture as the only target
            extra_cuda_cflags=["-O3", f"-gencode=arch=compute_{arch},code=sm_{arch}", "--use_fast_math",
                               "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
                               "--expt-relaxed-constexpr", "--expt-extended-lambda"],
            verbose=False)
    return _BUILT[arch]


class NvidiaAntiAliasActivation(nn.Module):
    """The forward of an `AntiAliasActivation1d` (ratio 2, 12 taps) through NVIDIA's kernel, which
    takes log-scale α, β and every operand in the input's dtype (no backward)."""

    def __init__(self, ours: AntiAliasActivation1d) -> None:
        super().__init__()
        if (ours.up_ratio, ours.down_ratio, ours.upsample.kernel_size, ours.downsample.kernel_size) != (2, 2, 12, 12):
            raise ValueError("NVIDIA's kernel is written for ratio 2 and 12-tap filters only")
        self.ours, self.kernel = ours, nvidia_extension()

    def forward(self, x: Tensor) -> Tensor:
        act, dtype = self.ours.act, x.dtype
        alpha = act.alpha if act.logscale else act.alpha.log()
        beta = alpha if not isinstance(act, SnakeBeta) else (act.beta if act.logscale else act.beta.log())
        y = self.kernel.forward(x.contiguous(), self.ours.upsample.filter.to(dtype),
                                self.ours.downsample.lowpass.filter.to(dtype), alpha.to(dtype), beta.to(dtype))
        return act.apply_correction(y)


def use_nvidia_kernel(model: nn.Module) -> int:
    """Replace, in place, every AntiAliasActivation1d under `model` by NVIDIA's kernel; the count."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AntiAliasActivation1d):
                setattr(parent, name, NvidiaAntiAliasActivation(child))
                swapped += 1
    return swapped


def main() -> None:
    rows = []
    for shape in SHAPES:
        channels = shape[1]
        ours = AntiAliasActivation1d(SnakeBeta(channels, logscale=True)).cuda()
        with torch.no_grad():
            ours.act.alpha.normal_(0, 0.3)
            ours.act.beta.normal_(0, 0.3)
        theirs = NvidiaAntiAliasActivation(ours)
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
