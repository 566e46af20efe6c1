"""Snake and SnakeBeta activation layers (per-channel α, β) on the fused kernels.

Drop-in for BigVGAN's `Snake`/`SnakeBeta` (parameters `alpha`, `beta` of shape (C,)) and for
descript-audio-codec's `Snake1d` (its `alpha` of shape (1, C, 1) loads too).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

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


def _initial(value: float | Tensor | Sequence[float], logscale: bool, name: str, channels: int) -> Tensor:
    """The parameter's initial (C,) values from one number, or from one value per channel (a tensor,
    array or list of `channels` values); a clear error for anything else."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name}={value} must be a finite number")
        if logscale and value <= 0:
            raise ValueError(f"{name}={value} must be positive when logscale=True (it is stored as a log)")
        return torch.full((channels,), math.log(value) if logscale else float(value))
    accepted = f"one number or {channels} per-channel values (a tensor of shape ({channels},))"
    try:
        values = torch.as_tensor(value.detach() if isinstance(value, Tensor) else value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be {accepted}, got {value!r}") from err
    if isinstance(value, bool) or values.numel() not in (1, channels):
        raise ValueError(f"{name} must be {accepted}, got {'a bool' if isinstance(value, bool) else f'{values.numel()} values of shape {tuple(values.shape)}'}")
    if not torch.isfinite(values).all() or (logscale and not (values > 0).all()):
        raise ValueError(f"{name} values must be finite" + (" and positive when logscale=True (they are stored "
                                                            "as logs)" if logscale else ""))
    values = values.reshape(-1).expand(channels)
    return (values.log() if logscale else values).to(torch.float32).clone()


def _one_value(value: object) -> bool:
    return isinstance(value, numbers.Real) or (isinstance(value, Tensor) and value.numel() == 1)


class _SnakeBase(nn.Module):
    """Shared construction, state-dict compatibility and variance correction.

    `correction='std'` divides the output by its std at the initial α (β) for N(0, 1) inputs
    (`vocoder.layers.init.snake_correction_scale`), so a stack keeps unit variance at init.
    """

    def __init__(self, channels: int, alpha: float | Tensor, logscale: bool, dim: int,
                 correction: str | None, impl: str, beta: float | Tensor | None = None) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        check_impl(impl)
        if correction and not (_one_value(alpha) and (beta is None or _one_value(beta))):
            raise ValueError(f"correction={correction!r} is computed for one initial alpha and beta; give numbers, "
                             "or correction=None with per-channel values")
        if correction:
            alpha, beta = float(alpha), None if beta is None else float(beta)
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
    """y = x + sin²(αx)/α per channel along `dim`; α is trained as log α when `logscale`. `alpha`:
    one initial value, or one per channel (a tensor of shape (channels,))."""

    def __init__(self, channels: int, alpha: float | Tensor = 1.0, logscale: bool = False,
                 trainable: bool = True, dim: int = 1, correction: str | None = None,
                 impl: str = "fused") -> None:
        super().__init__(channels, alpha, logscale, dim, correction, impl)
        self.alpha = nn.Parameter(_initial(alpha, logscale, "alpha", channels), requires_grad=trainable)

    def forward(self, x: Tensor) -> Tensor:
        if self.impl == "eager":
            return self.apply_correction(self._eager(x, None))
        return self.apply_correction(snake(x, self.alpha, self.dim, self.logscale))


class SnakeBeta(_SnakeBase):
    """y = x + sin²(αx)/β per channel along `dim`: β sets the magnitude apart from the frequency α.
    `alpha`, `beta`: one initial value each, or one per channel (tensors of shape (channels,))."""

    def __init__(self, channels: int, alpha: float | Tensor = 1.0, beta: float | Tensor = 1.0, logscale: bool = False,
                 trainable: bool = True, dim: int = 1, correction: str | None = None,
                 impl: str = "fused") -> None:
        super().__init__(channels, alpha, logscale, dim, correction, impl, beta)
        self.alpha = nn.Parameter(_initial(alpha, logscale, "alpha", channels), requires_grad=trainable)
        self.beta = nn.Parameter(_initial(beta, logscale, "beta", channels), requires_grad=trainable)

    def forward(self, x: Tensor) -> Tensor:
        if self.impl == "eager":
            return self.apply_correction(self._eager(x, self.beta))
        return self.apply_correction(snake_beta(x, self.alpha, self.beta, self.dim, self.logscale))
