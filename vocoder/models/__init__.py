"""Models built from the layers: the generator, discriminators and losses."""

from .generator import Generator
from .discriminators import (
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    MultiScaleSubbandCQTDiscriminator,
    build_discriminators,
)
from .losses import MultiScaleMelSpectrogramLoss, discriminator_loss, feature_loss, generator_loss

__all__ = ["Generator"]
__all__ += [
    "MultiPeriodDiscriminator",
    "MultiResolutionDiscriminator",
    "MultiScaleSubbandCQTDiscriminator",
    "build_discriminators",
    "MultiScaleMelSpectrogramLoss",
    "discriminator_loss",
    "feature_loss",
    "generator_loss",
]
