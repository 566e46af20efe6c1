"""nn.Modules users import into their own models."""

from .amp import AMPBlock1, AMPBlock2
from .anti_alias import AntiAliasActivation1d
from .init import (
    snake_correction_scale,
    snake_gain,
    snake_kaiming_normal_,
    snake_kaiming_uniform_,
    snake_mean,
    snake_second_moment,
    snake_variance,
)
from .snake import Snake, SnakeBeta

__all__ = [
    "AMPBlock1",
    "AMPBlock2",
    "AntiAliasActivation1d",
    "Snake",
    "SnakeBeta",
    "snake_correction_scale",
    "snake_gain",
    "snake_kaiming_normal_",
    "snake_kaiming_uniform_",
    "snake_mean",
    "snake_second_moment",
    "snake_variance",
]
