"""Checkpoints: atomic saves, `weights_only` loads, and a Generator from ours (weights + config) or
from NVIDIA's BigVGAN release (`bigvgan_generator.pt` with `config.json` beside it)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .layers.weight_norm import adapt_state_dict
from .models.generator import Generator

NVIDIA_WEIGHTS, NVIDIA_CONFIG = "bigvgan_generator.pt", "config.json"


class CheckpointError(RuntimeError):
    """A file that is not a usable checkpoint, or weights that do not fit the model."""


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write `state` to `path` atomically: a temp file in the same folder, fsync, then rename.

    On any failure the temp file is removed and an existing file at `path` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


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
                              f"holding objects other than tensors and plain data): {e}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(state).__name__}, not a dict")
    return state


def save_generator(path: str | os.PathLike, generator: Generator, config: Mapping[str, Any] | None = None) -> None:
    """Save a generator with its config, so `load_generator(path)` needs nothing else."""
    config = dict(generator.config if config is None else config)
    save_checkpoint(path, generator=generator.state_dict(), config=config)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read the model config {path}: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model config must be a JSON object of settings "
                              f"(\"num_mels\": ..., ...), got {_JSON_KINDS.get(type(config), type(config).__name__)}")
    return config


_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
               type(None): "null"}
_POSITIVE_INTS = ("num_mels", "upsample_initial_channel", "sampling_rate", "n_fft", "hop_size", "win_size")
_INT_LISTS = ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes")
_FLAGS = ("snake_logscale", "use_tanh_at_final", "use_bias_at_final")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_model_config(config: Mapping[str, Any], source: str | os.PathLike) -> None:
    """Raise a CheckpointError naming `source` and the key when a model setting that is present has
    the wrong type (a null n_fft, a string where a list of ints belongs, ...)."""
    def bad(key: str, what: str) -> CheckpointError:
        return CheckpointError(f"{source}: {key} must be {what}, got {json.dumps(config[key], default=str)}")

    for key in _POSITIVE_INTS:
        if key in config and not _positive_int(config[key]):
            raise bad(key, "a positive integer")
    for key in _INT_LISTS:
        if key in config and not (isinstance(config[key], list) and config[key]
                                  and all(map(_positive_int, config[key]))):
            raise bad(key, "a non-empty list of positive integers")
    dilations = config.get("resblock_dilation_sizes")
    if "resblock_dilation_sizes" in config and not (
            isinstance(dilations, list) and dilations
            and all(isinstance(d, list) and d and all(map(_positive_int, d)) for d in dilations)):
        raise bad("resblock_dilation_sizes", "a non-empty list of lists of positive integers")
    for key in _FLAGS:
        if key in config and not isinstance(config[key], bool):
            raise bad(key, "true or false")
    for key, optional in (("fmin", False), ("fmax", True)):
        value = config.get(key)
        if key in config and not (value is None and optional) and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise bad(key, "a number of Hz, at least 0" + (", or null" if optional else ""))


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
        check_model_config(config, path)
        return dict(config)
    if beside is not None:
        config = _read_json(beside)
        check_model_config(config, beside)
        return config
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
