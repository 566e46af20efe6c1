"""HiFi-GAN (jik876) generator checkpoints in this package's checkpoint layout: `g_NNNNNNNN` or
`generator_*.pth.tar` files, `{"generator": state dict}` or a bare state dict, `config.json` beside.

jik876's generator is ours with `activation="leaky_relu"`; its upsamplers are `ups.i` where ours are
`ups.i.0` (ours hold the upsampler in a list), which is the only key that differs. Its `weight_g`/
`weight_v` keys are folded by `vocoder.layers.weight_norm` when the state dict loads. Its `do_`
files (MPD, MSD and optimiser states) are not read: our GAN step has no MSD.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor


CONFIG = "config.json"
WEIGHT_PATTERNS = ("g_*", "generator*")  # jik876's training checkpoints; released files (generator_v1, ...)
SETTINGS = {"activation": "leaky_relu", "use_tanh_at_final": True, "use_bias_at_final": True}
_JIK876_UPSAMPLER = re.compile(
    r"ups\.(\d+)\.((?:weight|weight_g|weight_v|bias|parametrizations\.weight\.original[01]))")
_TRAINING_STEP = re.compile(r"g_(\d+)")


def generator_state_dict(state: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The generator state dict of a loaded file, `{"generator": ...}` or bare; None if it is no
    HiFi-GAN generator (no `conv_pre` and jik876-style `ups.i.weight*` keys, or our record beside it)."""
    if "model" in state or "config" in state:
        return None
    weights = state.get("generator", state)
    if not isinstance(weights, Mapping) or not all(isinstance(v, Tensor) for v in weights.values()):
        return None
    keys = [str(k) for k in weights]
    if not any(k.startswith("conv_pre.") for k in keys) or not any(_JIK876_UPSAMPLER.fullmatch(k) for k in keys):
        return None
    return weights


def our_keys(weights: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """jik876's generator state dict with our key names (`ups.i.X` → `ups.i.0.X`)."""
    return {_JIK876_UPSAMPLER.sub(r"ups.\1.0.\2", k) if _JIK876_UPSAMPLER.fullmatch(k) else k: v
            for k, v in weights.items()}


def as_our_checkpoint(weights: Mapping[str, Tensor], flat_config: Mapping[str, Any]) -> dict[str, Any]:
    """A HiFi-GAN generator state dict and its flat config.json as our older checkpoint layout
    ({"generator", "config"}), which `vocoder.checkpoint` splits and checks like NVIDIA's config."""
    return {"generator": our_keys(weights), "config": {**flat_config, **SETTINGS}}


def missing_config(source: Path) -> str:
    """Why a HiFi-GAN generator without its config.json cannot be loaded."""
    return (f"{source} is a HiFi-GAN (jik876) generator: it needs its {CONFIG} beside it "
            "(the upsample rates, channels and mel settings it was trained with)")


def find_weights(folder: Path) -> Path | None:
    """The HiFi-GAN generator file of a folder: the last `g_NNNNNNNN` (the step jik876's training
    would resume from), else the one `generator*` file; None if there is none. A ValueError when
    several `generator*` files leave the choice open."""
    steps = sorted((p for p in folder.glob("g_*") if _TRAINING_STEP.fullmatch(p.name) and p.is_file()),
                   key=lambda p: int(p.name[2:]))
    if steps:
        return steps[-1]
    named = sorted(p for p in folder.glob("generator*") if p.is_file())
    if len(named) > 1:
        raise ValueError(f"{folder} holds several HiFi-GAN generators ({', '.join(p.name for p in named)}): "
                         "pass the file")
    return named[0] if named else None
