"""Anti-aliased activation (BigVGAN's Activation1d): upsample → Snake/SnakeBeta → low-pass + downsample,
running as one fused op (`impl="fused"`) or as BigVGAN's plain-PyTorch chain (`impl="eager"`).

The submodules and buffers are laid out like BigVGAN's, so its state-dict keys load unchanged:
`act.alpha`, `act.beta`, `upsample.filter`, `downsample.lowpass.filter`.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..kernels import anti_alias_activation, filters, reference
from .snake import Snake, SnakeBeta, check_impl


class UpSample1d(nn.Module):
    """Upsampling by `ratio` with a Kaiser-windowed sinc (buffer `filter`, shape (1, 1, K))."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.ratio = ratio
        self.kernel_size = filters.default_kernel_size(ratio) if kernel_size is None else kernel_size
        self.register_buffer("filter", filters.resampling_filter(ratio, self.kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        return filters.upsample1d(x, self.filter, self.ratio)


class LowPassFilter1d(nn.Module):
    """Low-pass filter with replicate padding and stride (buffer `filter`, shape (1, 1, K))."""

    def __init__(self, cutoff: float = 0.5, half_width: float = 0.6, stride: int = 1,
                 kernel_size: int = 12) -> None:
        super().__init__()
        if not 0.0 <= cutoff <= 0.5:
            raise ValueError(f"cutoff must lie in [0, 0.5], got {cutoff}")
        self.stride, self.kernel_size = stride, kernel_size
        self.register_buffer("filter", filters.kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        return filters.lowpass_downsample1d(x, self.filter, self.stride)


class DownSample1d(nn.Module):
    """Low-pass filtering and downsampling by `ratio` (submodule `lowpass`)."""

    def __init__(self, ratio: int = 2, kernel_size: int | None = None) -> None:
        super().__init__()
        self.ratio = ratio
        self.kernel_size = filters.default_kernel_size(ratio) if kernel_size is None else kernel_size
        self.lowpass = LowPassFilter1d(cutoff=0.5 / ratio, half_width=0.6 / ratio, stride=ratio,
                                       kernel_size=self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.lowpass(x)


class AntiAliasActivation1d(nn.Module):
    """Snake/SnakeBeta applied at `up_ratio`× the sample rate, then filtered back down, on (B, C, T).

    `activation` must be a `Snake` or `SnakeBeta` over the channel axis (dim=1); its parameters
    (and its `logscale` and variance correction) are used by the whole chain, which runs by this
    layer's `impl` (the activation's own `impl` is not consulted). "fused": with ratio 2 and even
    filter sizes one Triton kernel (forward and backward) on CUDA tensors, keeping only x for
    backward. "eager": BigVGAN's upsample → Snake → low-pass as plain PyTorch ops under autograd,
    which keeps their intermediates (NVIDIA's training path; the benchmarks' baseline).
    """

    def __init__(self, activation: nn.Module, up_ratio: int = 2, down_ratio: int = 2,
                 up_kernel_size: int = 12, down_kernel_size: int = 12, impl: str = "fused") -> None:
        super().__init__()
        check_impl(impl)
        if not isinstance(activation, (Snake, SnakeBeta)):
            raise ValueError("AntiAliasActivation1d needs a vocoder.layers.Snake or SnakeBeta "
                             f"activation, got {type(activation).__name__}")
        if activation.dim not in (1, -2):
            raise ValueError("AntiAliasActivation1d works on (B, C, T) with channels on axis 1; "
                             f"the activation has dim={activation.dim}")
        for name, value in (("up_ratio", up_ratio), ("down_ratio", down_ratio),
                            ("up_kernel_size", up_kernel_size), ("down_kernel_size", down_kernel_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.up_ratio, self.down_ratio, self.impl = up_ratio, down_ratio, impl
        self.act = activation
        self.upsample = UpSample1d(up_ratio, up_kernel_size)
        self.downsample = DownSample1d(down_ratio, down_kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.act.channels:
            raise ValueError(f"AntiAliasActivation1d with {self.act.channels} channels expects "
                             f"x of shape (batch, {self.act.channels}, time), got {tuple(x.shape)}")
        beta = self.act.beta if isinstance(self.act, SnakeBeta) else None
        run = anti_alias_activation if self.impl == "fused" else reference.anti_alias_activation
        y = run(x, self.upsample.filter, self.downsample.lowpass.filter, self.act.alpha, beta,
                self.act.logscale, self.up_ratio, self.down_ratio)
        return self.act.apply_correction(y)  # a constant scale: it commutes with the filters

    def reach(self) -> float:
        """One-sided reach of an output sample into the input, in input samples:
        K_up/(2·up_ratio) + K_down/(2·down_ratio) (6 for BigVGAN's 12-tap filters at ratio 2),
        rounded up from the exact, slightly asymmetric reach of the two filters."""
        return (self.upsample.kernel_size / (2 * self.up_ratio)
                + self.downsample.kernel_size / (2 * self.down_ratio))

    def extra_repr(self) -> str:
        return (f"up_ratio={self.up_ratio}, down_ratio={self.down_ratio}, "
                f"up_kernel_size={self.upsample.kernel_size}, "
                f"down_kernel_size={self.downsample.kernel_size}, impl={self.impl!r}")
