"""Kaiming-style initialisation for layers whose output feeds a Snake activation.

Snake (Liu Ziyin et al., arXiv:2006.08195, §5): ``snake(x) = x + sin²(αx)/α``.
For x ~ N(0, 1), with v = e^{-2α²} and r = (1 - v)/α (both computed without
cancellation; r -> 0 as α -> 0 and as α -> inf):

    E[snake(x)]   = (1 - e^{-2α²}) / (2α)                        = r/2
    E[snake(x)²]  = 1 + (3 - 4e^{-2α²} + e^{-8α²}) / (8α²)       = 1 + r²(3 + 2v + v²)/8
    Var[snake(x)] = 1 + (1 - 2e^{-4α²} + e^{-8α²}) / (8α²)       = 1 + r²(1 + v)²/8

(3 - 4v + v⁴ = (1-v)²(3+2v+v²) and 1 - 2v² + v⁴ = (1-v)²(1+v)², so the right
column has no catastrophic cancellation.) Limits as α -> 0: mean ~ α,
E[snake²] ~ 1 + 3α², Var ~ 1 + 2α²; all three tend to those of the identity.

The named constants 'approx' and 'max' follow falkaer/pytorch-snake (README
"Network initialization"/"Variance correction" and snake.py), which re-derives §5:
'approx' is the paper's approximation E[snake(x)²] ≈ 1 (gain 1), and 'max' uses
the maximum over α of E[snake(x)²] (gain) or of std[snake(x)] (correction).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor

Alpha = Union[float, Tensor]

# argmax over α > 0 of Var[snake(x)] and E[snake(x)²], x ~ N(0, 1) (Newton on the derivative, 30 digits).
ALPHA_MAX_VARIANCE = 0.560453211389267
ALPHA_MAX_SECOND_MOMENT = 0.657969897088734
MAX_STD = 1.0971017221728060  # sqrt(Var) at ALPHA_MAX_VARIANCE
MAX_SECOND_MOMENT = 1.3893710916467098  # E[snake²] at ALPHA_MAX_SECOND_MOMENT
CORRECTIONS = (None, "std", "max")


def _terms(alpha: Alpha) -> tuple[Alpha, Alpha]:
    """Validate ``alpha`` and return (r, v) = ((1 - e^{-2α²})/α, e^{-2α²}); tensors elementwise."""
    if isinstance(alpha, Tensor):
        a = alpha if alpha.is_floating_point() else alpha.to(torch.get_default_dtype())
        if bool((a < 0).any()) or bool(a.isnan().any()):
            raise ValueError("alpha must be >= 0 elementwise (0 gives the alpha -> 0 limit)")
        pos = a > 0
        safe = torch.where(pos, a, torch.ones_like(a))
        r = torch.where(pos, -torch.expm1(-2 * safe * safe) / safe, torch.zeros_like(a))
        return r, torch.exp(-2 * a * a)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a float or a torch.Tensor, got {type(alpha).__name__}")
    a = float(alpha)
    if not a > 0:  # also rejects NaN
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    return -math.expm1(-2 * a * a) / a, math.exp(-2 * a * a)


def snake_mean(alpha: Alpha) -> Alpha:
    """E[snake(x)] for x ~ N(0, 1), elementwise in ``alpha`` (float > 0, or tensor >= 0)."""
    r, _ = _terms(alpha)
    return r / 2


def snake_second_moment(alpha: Alpha) -> Alpha:
    """E[snake(x)²] for x ~ N(0, 1), elementwise in ``alpha`` (float > 0, or tensor >= 0)."""
    r, v = _terms(alpha)
    return 1 + r * r * (3 + 2 * v + v * v) / 8


def snake_variance(alpha: Alpha) -> Alpha:
    """Var[snake(x)] for x ~ N(0, 1), elementwise in ``alpha`` (float > 0, or tensor >= 0)."""
    r, v = _terms(alpha)
    return 1 + r * r * (1 + v) ** 2 / 8


def snake_correction_scale(alpha: Alpha, correction: Optional[str], beta: Optional[float] = None) -> Alpha:
    """The divisor c a Snake layer applies to its output to undo the variance change at init.

    'std': c = std[snake(x)] at this (initial) α, x ~ N(0, 1), so the output variance is 1
    for a standard normal input. 'max': c = MAX_STD ≈ 1.0971, the maximum of std[snake(x)]
    over all α (pytorch-snake's definition; independent of α). None: c = 1.
    A float ``alpha`` gives a float; a tensor gives a tensor of its shape (per channel).
    ``beta`` (SnakeBeta, x + sin²(αx)/β): with 'std' the sin² term's variance scales by (α/β)²,
    so c = sqrt(1 + (Var_snake(α) − 1)·α²/β²); 'max' keeps pytorch-snake's Snake constant.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    r, _ = _terms(alpha)  # validates alpha
    if correction == "std":
        if beta is None:
            return snake_variance(alpha) ** 0.5
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        return (1 + (snake_variance(alpha) - 1) * (alpha / beta) ** 2) ** 0.5
    value = MAX_STD if correction == "max" else 1.0
    return torch.full_like(r, value) if isinstance(r, Tensor) else value


def snake_gain(alpha: Union[Alpha, str], correction: Optional[str] = None) -> float:
    """Kaiming gain for weights fed by Snake outputs: weight std = gain / sqrt(fan).

    Assumes the previous Snake's inputs are iid N(0, 1), the weights are iid, zero-mean and
    independent of their inputs, and the bias is zero, so a pre-activation h = sum_i w_i z_i
    has E[h²] = fan * std_w² * E[z²]. Choosing gain = 1/sqrt(E[z²]) keeps E[h²] = 1 (the second
    moment, not the variance, matters because snake(x) has a non-zero mean).
    ``alpha``: a float; a tensor of per-channel α (E[z²] is then the mean over channels of
    E[snake²] / c², exact for mode='fan_in' since every input channel contributes equally to
    the fan); 'approx' (the paper's E[snake²] ≈ 1, gain 1, exact for α -> 0 and α -> inf); or
    'max' (E[snake²] = MAX_SECOND_MOMENT, its maximum over α: the smallest exact gain, ≈ 0.8484).
    ``correction``: the previous Snake divides by ``snake_correction_scale(alpha, correction)``,
    so z = snake/c and gain = 1/sqrt(mean(E[snake²] / c²)); 'std' needs a numeric ``alpha``.
    """
    if isinstance(alpha, str):
        if alpha not in ("approx", "max"):
            raise ValueError(f"alpha must be a number, a tensor, 'approx' or 'max', got {alpha!r}")
        if correction == "std":
            raise ValueError("correction='std' needs a numeric alpha, not " + repr(alpha))
        second = 1.0 if alpha == "approx" else MAX_SECOND_MOMENT
        scale = snake_correction_scale(1.0, correction)  # α-independent for None/'max'
    else:
        second, scale = snake_second_moment(alpha), snake_correction_scale(alpha, correction)
    ratio = second / (scale * scale)
    return 1.0 / math.sqrt(float(ratio.mean()) if isinstance(ratio, Tensor) else ratio)


def _snake_std(tensor: Tensor, alpha: Union[Alpha, str], mode: str, correction: Optional[str]) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = torch.nn.init._calculate_correct_fan(tensor, mode)
    return snake_gain(alpha, correction) / math.sqrt(fan)


def snake_kaiming_normal_(tensor: Tensor, alpha: Union[Alpha, str] = "approx", mode: str = "fan_in", *,
                          correction: Optional[str] = None, generator: Optional[torch.Generator] = None) -> Tensor:
    """Fill ``tensor`` in place from N(0, std²), std = snake_gain(alpha, correction) / sqrt(fan).

    Use it for a layer whose *inputs* are Snake outputs (a tensor ``alpha`` holds one α per input
    channel; see ``snake_gain`` for the assumptions). ``mode``: 'fan_in' keeps the forward second
    moment; 'fan_out' only swaps the fan, as torch does, keeping the forward gain (the backward pass
    really scales by E[snake'(x)²] = 1 + (1 - e^{-8α²})/2, so it is approximate there); fans come
    from ``torch.nn.init._calculate_correct_fan``. ``correction``: as in ``snake_gain``; ``generator``: the
    RNG to draw from (default: the global one). Runs under ``torch.no_grad``; returns ``tensor``.
    """
    std = _snake_std(tensor, alpha, mode, correction)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def snake_kaiming_uniform_(tensor: Tensor, alpha: Union[Alpha, str] = "approx", mode: str = "fan_in", *,
                           correction: Optional[str] = None, generator: Optional[torch.Generator] = None) -> Tensor:
    """Fill ``tensor`` in place from U(-b, b), b = sqrt(3) * std, with std as in ``snake_kaiming_normal_``."""
    bound = math.sqrt(3.0) * _snake_std(tensor, alpha, mode, correction)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)
