"""Fused Triton kernels and their plain-PyTorch references; nothing here knows about models."""

from .snake import snake, snake_beta

__all__ = ["snake", "snake_beta"]
