"""vocoder: a BigVGAN-style neural vocoder whose Snake activations run on fused Triton kernels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Vocoder"]

if TYPE_CHECKING:
    from .vocoder import Vocoder


def __getattr__(name: str) -> Any:
    """`from vocoder import Vocoder` imports the inference stack on first use; `import vocoder` stays light."""
    if name == "Vocoder":
        from .vocoder import Vocoder

        globals()[name] = Vocoder
        return Vocoder
    raise AttributeError(f"module 'vocoder' has no attribute {name!r}")
