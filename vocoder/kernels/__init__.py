"""Fused Triton kernels and their plain-PyTorch references; nothing here knows about models."""

from .anti_alias import anti_alias_activation
from .snake import snake, snake_beta

__all__ = ["anti_alias_activation", "snake", "snake_beta"]
