"""Snake and SnakeBeta activation layers (per-channel α, β) on the fused kernels.

Drop-in for BigVGAN's `Snake`/`SnakeBeta` (parameters `alpha`, `beta` of shape (C,)) and for
descript-audio-codec's `Snake1d` (its `alpha` of shape (1, C, 1) loads too).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..kernels import reference, snake, snake_beta
from ..kernels.inputs import check_floating
from .init import snake_correction_scale

# How an activation layer runs. "fused": vocoder.kernels' op (Triton on CUDA, recomputes in
# backward, keeps only its input; VOCODER_BACKEND still picks its path). "eager": BigVGAN's
# formula as plain PyTorch ops under autograd, which keeps their intermediates.
IMPLS = ("fused", "eager")


def check_impl(impl: str) -> None:
    """A clear error for an `impl` that is not one of IMPLS."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def _initial(value: float, logscale: bool, name: str, channels: int) -> Tensor:
    if logscale and value <= 0:
        raise ValueError(f"{name}={value} must be positive when logscale=True (it is stored as a log)")
    return torch.full((channels,), math.log(value) if logscale else float(value))


class _SnakeBase(nn.Module):
    """Shared construction, state-dict compatibility and variance correction.

    `correction='std'` divides the output by its std at the initial α (β) for N(0, 1) inputs
    (`vocoder.layers.init.snake_correction_scale`), so a stack keeps unit variance at init.
    """

    def __init__(self, channels: int, alpha: float, logscale: bool, dim: int,
                 correction: str | None, impl: str, beta: float | None = None) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels}")
        check_impl(impl)
        scale = snake_correction_scale(alpha, correction, beta) if correction else 1.0
        self.channels, self.logscale, self.dim, self.correction = channels, logscale, dim, correction
        self.impl = impl
        self.register_buffer("correction_scale", torch.as_tensor(float(scale)), persistent=False)

    def apply_correction(self, y: Tensor) -> Tensor:
        """The layer's output from the activation's: divided by the correction scale, if any."""
        return y if self.correction is None else y / self.correction_scale.to(y.dtype)

    def _eager(self, x: Tensor, beta: Tensor | None) -> Tensor:
        """BigVGAN's formula through autograd (impl="eager"), after the checks the fused op makes."""
        check_floating(x, type(self).__name__)
        if not -x.ndim <= self.dim < x.ndim or x.shape[self.dim] != self.channels:
            raise ValueError(f"{type(self).__name__} with {self.channels} channels on dim={self.dim} "
                             f"got an input of shape {tuple(x.shape)}")
        return reference.snake(x, self.alpha, beta, self.dim % x.ndim, self.logscale)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("alpha", "beta"):  # descript-audio-codec stores alpha as (1, C, 1)
            value = state_dict.get(prefix + name)
            if value is not None and value.ndim == 3 and value.shape[0] == value.shape[2] == 1:
                state_dict[prefix + name] = value.reshape(-1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        extra = f", correction={self.correction!r}" if self.correction else ""
        extra += f", impl={self.impl!r}" if self.impl != "fused" else ""
        return f"{self.channels}, logscale={self.logscale}, dim={self.dim}{extra}"


class Snake(_SnakeBase):
    """y = x + sin²(αx)/α per channel along `dim`; α is trained as log α when `logscale`."""

    def __init__(self, channels: int, alpha: float = 1.0, logscale: bool = False,
                 trainable: bool = True, dim: int = 1, correction: str | None = None,
                 impl: str = "fused") -> None:
        super().__init__(channels, alpha, logscale, dim, correction, impl)
        self.alpha = nn.Parameter(_initial(alpha, logscale, "alpha", channels), requires_grad=trainable)

    def forward(self, x: Tensor) -> Tensor:
        if self.impl == "eager":
            return self.apply_correction(self._eager(x, None))
        return self.apply_correction(snake(x, self.alpha, self.dim, self.logscale))


class SnakeBeta(_SnakeBase):
    """y = x + sin²(αx)/β per channel along `dim`: β sets the magnitude apart from the frequency α."""

    def __init__(self, channels: int, alpha: float = 1.0, beta: float = 1.0, logscale: bool = False,
                 trainable: bool = True, dim: int = 1, correction: str | None = None,
                 impl: str = "fused") -> None:
        super().__init__(channels, alpha, logscale, dim, correction, impl, beta)
        self.alpha = nn.Parameter(_initial(alpha, logscale, "alpha", channels), requires_grad=trainable)
        self.beta = nn.Parameter(_initial(beta, logscale, "beta", channels), requires_grad=trainable)

    def forward(self, x: Tensor) -> Tensor:
        if self.impl == "eager":
            return self.apply_correction(self._eager(x, self.beta))
        return self.apply_correction(snake_beta(x, self.alpha, self.beta, self.dim, self.logscale))
