"""Fused Triton kernels and their plain-PyTorch references; nothing here knows about models.

Modules: `snake_op` and `anti_alias_op` (one fused op each: kernels, launchers, torch.library
registration), `tiles` (their launch geometry), `polyphase` and `snake_params` (Triton building
blocks), `filters` (BigVGAN's resampling filters), `reference` (the plain-PyTorch oracle),
`backend` (which path runs), `layout` (dense views of any tensor).
"""

from .anti_alias_op import anti_alias_activation
from .snake_op import snake, snake_beta
from .tiles import AntiAliasTiles, SnakeTiles

__all__ = ["AntiAliasTiles", "SnakeTiles", "anti_alias_activation", "snake", "snake_beta"]
