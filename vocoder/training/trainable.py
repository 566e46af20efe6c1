"""`train.trainable` and `train.freeze_stages`: which of the generator's parameters a (fine-tuning) run
updates; the others keep their loaded values (no gradient, no AdamW step, no weight decay)."""

from __future__ import annotations

from torch import nn

from ..layers import Snake, SnakeBeta

TRAINABLE = ("all", "snake")


def frozen_names(generator: nn.Module, trainable: str = "all", freeze_stages: int = 0) -> set[str]:
    """Names of the generator parameters that do not train. `trainable="snake"`: only the Snake/SnakeBeta
    α (and β) train; `freeze_stages=N`: conv_pre and the first N upsampling stages (each one's
    transposed conv and the AMP blocks after it) do not train either."""
    if trainable not in TRAINABLE:
        raise ValueError(f"train.trainable must be one of {', '.join(TRAINABLE)}, got {trainable!r}")
    stages = len(generator.ups)
    if not 0 <= freeze_stages <= stages:
        raise ValueError(f"train.freeze_stages must be between 0 and the generator's {stages} upsampling "
                         f"stages, got {freeze_stages}")
    frozen = set()
    if trainable == "snake":
        snake = {f"{m}.{p}" if m else p for m, module in generator.named_modules()
                 if isinstance(module, (Snake, SnakeBeta)) for p, _ in module.named_parameters(recurse=False)}
        frozen |= {n for n, _ in generator.named_parameters() if n not in snake}
    if freeze_stages:
        per_stage = len(generator.resblocks) // stages
        prefixes = ["conv_pre."] + [f"ups.{i}." for i in range(freeze_stages)] + [
            f"resblocks.{j}." for j in range(freeze_stages * per_stage)]
        frozen |= {n for n, _ in generator.named_parameters() if n.startswith(tuple(prefixes))}
    return frozen


def set_trainable(generator: nn.Module, trainable: str = "all", freeze_stages: int = 0) -> tuple[int, int]:
    """Switch off the gradients of `frozen_names`; (parameters that train, all parameters), counted in values."""
    frozen = frozen_names(generator, trainable, freeze_stages)
    for name, p in generator.named_parameters():
        p.requires_grad_(name not in frozen)
    params = list(generator.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
