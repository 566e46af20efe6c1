"""Checkpoints: atomic saves, `weights_only` loads, and a Generator from ours (weights + config) or
from NVIDIA's BigVGAN release (`bigvgan_generator.pt` with `config.json` beside it)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .atomic import atomic_write
from .layers.weight_norm import adapt_state_dict
from .models.generator import Generator

NVIDIA_WEIGHTS, NVIDIA_CONFIG = "bigvgan_generator.pt", "config.json"


class CheckpointError(RuntimeError):
    """A file that is not a usable checkpoint, or weights that do not fit the model."""


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write `state` to `path` atomically (`vocoder.atomic.atomic_write`: temp file, fsync, rename).

    On any failure the temp file is removed and an existing file at `path` is left untouched; the
    file gets the mode of any other file the user writes (0o666 less the umask).
    """
    atomic_write(path, lambda f: torch.save(state, f))


def load_error(error: Exception) -> str:
    """torch.load's reason in one line: its weights_only message reduced to the unpickler's own words
    (the rest suggests weights_only=False, wrong advice for a corrupt file)."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split()) or type(error).__name__


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with `torch.load(weights_only=True)`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" if not path.exists()
                                else f"checkpoint {path} is not a file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} is not a loadable PyTorch checkpoint (corrupt, truncated, or "
                              f"holding objects other than tensors and plain data): {load_error(e)}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(state).__name__}, not a dict")
    return state


def save_generator(path: str | os.PathLike, generator: Generator, config: Mapping[str, Any] | None = None) -> None:
    """Save a generator with its config, so `load_generator(path)` needs nothing else."""
    config = dict(generator.config if config is None else config)
    save_checkpoint(path, generator=generator.state_dict(), config=config)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read the model config {path}: {e}") from e


def _locate(path: Path) -> tuple[Path, Path | None]:
    """(weights file, config.json beside it or None) for a file or a folder."""
    if path.is_dir():
        weights = path / NVIDIA_WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"{path} is a folder without {NVIDIA_WEIGHTS}; pass the checkpoint file, "
                                    f"or a folder holding {NVIDIA_WEIGHTS} and {NVIDIA_CONFIG}")
        path = weights
    beside = path.parent / NVIDIA_CONFIG
    return path, beside if beside.is_file() else None


def _model_config(state: Mapping[str, Any], beside: Path | None, path: Path) -> dict[str, Any]:
    config = state.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("model"), Mapping):
        config = config["model"]  # a training checkpoint: the run config
    if isinstance(config, Mapping):
        return dict(config)
    if beside is not None:
        return _read_json(beside)
    raise CheckpointError(f"{path} holds no model config and there is no {NVIDIA_CONFIG} beside it")


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a CheckpointError naming the missing, unexpected and mis-shaped keys, if any."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(f"{k} {tuple(v.shape)} (model {tuple(expected[k].shape)})"
                       for k, v in state_dict.items()
                       if k in expected and hasattr(v, "shape") and v.shape != expected[k].shape)
    if not (missing or unexpected or misshaped):
        return

    def listed(title: str, keys: list[str]) -> str:
        shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
        return f"\n  {title}: {shown}" if keys else ""

    raise CheckpointError(f"{source} does not match the model config:" + listed("missing", missing)
                          + listed("unexpected", unexpected) + listed("wrong shape", misshaped))


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Build the Generator a checkpoint describes and load its weights.

    `path`: our checkpoint (weights + config), NVIDIA's `bigvgan_generator.pt` with its `config.json`
    beside it, or a folder holding both. The model config is kept as `generator.config`.
    """
    weights, beside = _locate(Path(path))
    state = load_checkpoint(weights, "cpu")
    if not isinstance(state.get("generator"), Mapping):
        raise CheckpointError(f"{weights} has no 'generator' state dict (keys: {sorted(state)[:10]})")
    config = _model_config(state, beside, weights)
    try:
        generator = Generator.from_config(config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"the model config of {weights} does not describe a generator: {e}") from e
    state_dict = adapt_state_dict(generator, state["generator"])
    check_state_dict(generator, state_dict, str(weights))
    generator.load_state_dict(state_dict)
    return generator.to(device)
