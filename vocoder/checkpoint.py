"""Checkpoints: atomic saves, `weights_only` loads, and a Generator with its mel settings from ours or
from NVIDIA's BigVGAN release (`bigvgan_generator.pt` with `config.json` beside it).

What our checkpoints record about the model is `model = {"generator": the Generator's keyword
arguments, "mel": its MelSpectrogram settings}` (`model_record`). Older layouts are translated here,
at the boundary, and nowhere else (`read_model_config`): this package's checkpoints written before
the model/mel split (one flat dict of generator and mel keys, under `config`, or under `config.model`
in training checkpoints) and NVIDIA's flat `config.json`; and generator state dicts written before
the pitch source became one component (`generator_state`); training checkpoints that kept their
discriminator settings only in the run config (`read_discriminator_record`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import hifigan_checkpoint
from .audio import MEL_SETTINGS, MelSpectrogram
from .atomic import atomic_write
from .layers.weight_norm import adapt_state_dict
from .models.discriminators import with_defaults
from .models.generator import Generator, check_mel_settings

NVIDIA_WEIGHTS, NVIDIA_CONFIG = "bigvgan_generator.pt", "config.json"
# the pitch source's parameters before they moved into Generator.conditioning: old prefix → new
RENAMED_PREFIXES = {"pitch_predictor.": "conditioning.predictor.", "source.": "conditioning.source.",
                    "source_downs.": "conditioning.downs."}


class CheckpointError(RuntimeError):
    """A file that is not a usable checkpoint, or weights that do not fit the model."""


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write `state` to `path` atomically (`vocoder.atomic.atomic_write`: temp file, fsync, rename).

    On any failure the temp file is removed and an existing file at `path` is left untouched; the
    file gets the mode of any other file the user writes (0o666 less the umask).
    """
    atomic_write(path, lambda f: torch.save(state, f))


ACCEPTED = ("a PyTorch checkpoint (ours, a training step_N.pt, NVIDIA's bigvgan_generator.pt or a HiFi-GAN "
            "(jik876) g_NNNNNNNN / generator* file with its config.json beside it), a .safetensors file of "
            "generator weights (with the model record in its metadata, or a config.json beside it), or a "
            "folder holding one of those generator files and config.json")


def load_error(error: Exception) -> str:
    """torch.load's reason in one line, without its advice to retry with weights_only=False (wrong for a
    corrupt file, and dangerous for one holding code): the unpickler's own words, or which Python
    object the file would have run."""
    text = str(error)
    blocked = re.search(r"unsupported GLOBAL (\S+)", text)
    if blocked and "Weights only load failed" in text:
        return (f"it holds pickled Python code ({blocked[1].rstrip('.,;')}), which is never run here; a checkpoint "
                "must hold only tensors and plain data (re-save it as torch.save({'generator': "
                "model.state_dict(), ...}) where it was made)")
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0]
    elif "Weights only load failed" in text:
        text = re.sub(r"[^.]*weights_only[^.]*\.", "", text.split("Check the documentation", 1)[0])
    return " ".join(text.split()) or type(error).__name__


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """8 bytes of little-endian header length (at most safetensors' 100 MB), then a JSON header."""
    return len(head) > 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= 100_000_000


def _looks_like_json(head: bytes, size: int) -> bool:
    return head.lstrip()[:1] in (b"{", b"[")


# What a file is, from its first bytes: (kind, test of (head, file size), what to call it). A new
# container format is one more row; load_checkpoint reads "torch" and "safetensors" files.
FILE_KINDS: tuple[tuple[str, Callable[[bytes, int], bool], str], ...] = (
    ("empty", lambda head, size: size == 0, "an empty file"),
    ("torch", lambda head, size: head[:4] == b"PK\x03\x04", "a PyTorch checkpoint"),
    ("torch", lambda head, size: head[:1] == b"\x80", "a PyTorch checkpoint (legacy format)"),
    ("safetensors", _looks_like_safetensors, "a safetensors file"),
    ("json", _looks_like_json, "a JSON file (a model config.json?)"),
)


def file_kind(path: Path) -> tuple[str, str]:
    """(kind, description) of the file at `path` from its first bytes: one of FILE_KINDS, else 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(64)
    size = path.stat().st_size
    for kind, test, description in FILE_KINDS:
        if test(head, size):
            return kind, description
    return "unknown", "not a checkpoint format this package reads"


def _read_safetensors(path: Path) -> dict[str, Any]:
    """A .safetensors file as a checkpoint dict: {"generator": its tensors} (a `generator.` prefix
    stripped), and {"model": the record} when its metadata holds one under "model"."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is a safetensors file that cannot be read (truncated or corrupt): {e}") from e
    if tensors and all(k.startswith("generator.") for k in tensors):
        tensors = {k.removeprefix("generator."): v for k, v in tensors.items()}
    state: dict[str, Any] = {"generator": tensors}
    if "model" in metadata:
        try:
            state["model"] = json.loads(metadata["model"])
        except ValueError as e:
            raise CheckpointError(f"{path}: the model record in its metadata is not JSON: {e}") from e
    return state


def generator_state(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A generator state dict with the names of older layouts translated to today's (order kept)."""
    def renamed(key: str) -> str:
        for old, new in RENAMED_PREFIXES.items():
            if key.startswith(old):
                return new + key[len(old):]
        return key
    return {renamed(k): v for k, v in state_dict.items()}


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict: a PyTorch file with `torch.load(weights_only=True)` (pickled code is
    never run), or a .safetensors file of generator weights; errors name the file and say what it is."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" if not path.exists()
                                else f"checkpoint {path} is not a file")
    kind, description = file_kind(path)
    if kind == "safetensors":
        return _read_safetensors(path)
    if kind not in ("torch", "unknown"):
        raise CheckpointError(f"{path} is {description}, not a checkpoint; accepted: {ACCEPTED}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        if kind == "unknown":
            raise CheckpointError(f"{path} is {description}; accepted: {ACCEPTED}") from e
        reason = load_error(e)
        how = ": " if reason.startswith("it holds pickled") else " (corrupt or truncated): "
        raise CheckpointError(f"{path} is not a loadable PyTorch checkpoint{how}{reason}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint: it holds a {type(state).__name__}, not a dict")
    return state


def model_record(generator: Generator, mel: Mapping[str, Any],
                 discriminator: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """What a checkpoint records about the model: the generator's keyword arguments and the mel
    settings (`MelSpectrogram.config`) it works on, as plain dicts; a training checkpoint also the
    settings of its discriminators (`discriminator_record`)."""
    record = {"generator": dict(generator.config), "mel": dict(mel)}
    if discriminator is not None:
        record["discriminator"] = discriminator_record(discriminator)
    return record


def discriminator_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Discriminator settings (vocoder/configs/discriminator) as a record holds them: over the
    defaults, as JSON values (so a tuple default and a yaml list compare equal)."""
    return json.loads(json.dumps(with_defaults({k: v for k, v in settings.items() if k != "defaults"})))


def read_discriminator_record(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The discriminator settings a training checkpoint records, or None: `model.discriminator`, or
    in checkpoints written before it was kept there, the run config's `discriminator` section."""
    model = state.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("discriminator"), Mapping):
        return dict(model["discriminator"])
    run = state.get("run_config") or state.get("config") or {}
    section = run.get("discriminator") if isinstance(run, Mapping) else None
    return discriminator_record(section) if isinstance(section, Mapping) else None


def save_generator(path: str | os.PathLike, generator: Generator, mel: Mapping[str, Any],
                   dtype: torch.dtype | None = None) -> None:
    """Save a generator with its config and mel settings, so `load_model(path)` needs nothing else.
    `dtype` (e.g. torch.float16, half the size): its floating-point weights are stored in it;
    loading casts them back to the model's float32. A `.safetensors` path writes that format
    (the record in its metadata)."""
    state = generator.state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    if Path(path).suffix == ".safetensors":  # the model record goes into the file's metadata
        from safetensors.torch import save

        data = save({k: v.contiguous() for k, v in state.items()},
                    metadata={"model": json.dumps(model_record(generator, mel))})
        atomic_write(path, lambda f: f.write(data))
        return
    save_checkpoint(path, generator=state, model=model_record(generator, mel))


def split_flat_config(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A flat BigVGAN config (NVIDIA's config.json; ours before the split) as {"generator", "mel"}:
    the Generator arguments and the mel settings in it. Other keys (training settings, the runtime
    switch `activation_checkpointing`) are left out."""
    return {"generator": {k: flat[k] for k in Generator.arguments() if k in flat},
            "mel": {k: flat[k] for k in MEL_SETTINGS if k in flat}}


def complete_model_config(record: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """A {"generator", "mel"} record with every default filled in, so that two records compare equal
    when they describe the same model; a ValueError names unknown or missing keys."""
    return {"generator": Generator.settings(record["generator"]), "mel": MelSpectrogram.settings(record["mel"])}


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


def read_model_config(state: Mapping[str, Any], source: str,
                      beside: Path | None = None) -> dict[str, dict[str, Any]]:
    """The complete {"generator", "mel"} record of a loaded checkpoint, whichever layout wrote it:
    ours (`model`), ours before the split (a flat `config`, or a training checkpoint's run config
    with the flat model config under `config.model`; HiFi-GAN's is translated to that), or NVIDIA's
    (`config.json` at `beside`)."""
    model, config = state.get("model"), state.get("config")
    if isinstance(model, Mapping) and isinstance(model.get("generator"), Mapping) \
            and isinstance(model.get("mel"), Mapping):
        check_model_config({**model["generator"], **model["mel"]}, source)
        record = model
    elif isinstance(config, Mapping):
        flat = config["model"] if isinstance(config.get("model"), Mapping) else config
        check_model_config(flat, source)
        record = split_flat_config(flat)
    elif beside is not None:
        flat = _read_json(beside)
        check_model_config(flat, beside)
        record = split_flat_config(flat)
    else:
        raise CheckpointError(f"{source} holds no model config and there is no {NVIDIA_CONFIG} beside it")
    try:
        complete = complete_model_config(record)
        check_mel_settings(complete["generator"], complete["mel"])
    except ValueError as e:
        raise CheckpointError(f"the model config of {source} does not describe a generator and its mel: {e}") from e
    return complete


def _locate(path: Path) -> tuple[Path, Path | None]:
    """(weights file, config.json beside it or None) for a file or a folder."""
    if path.is_dir():
        weights = path / NVIDIA_WEIGHTS
        if not weights.is_file():
            try:
                weights = hifigan_checkpoint.find_weights(path)
            except ValueError as e:
                raise CheckpointError(str(e)) from e
        if weights is None:
            raise FileNotFoundError(f"{path} is a folder without {NVIDIA_WEIGHTS} or a HiFi-GAN generator "
                                    f"(g_NNNNNNNN, generator*); pass the checkpoint file, or a folder holding "
                                    f"one of them and {NVIDIA_CONFIG}")
        path = weights
    beside = path.parent / NVIDIA_CONFIG
    return path, beside if beside.is_file() else None


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise a CheckpointError naming the missing, unexpected and mis-shaped keys, if any (one line)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(f"{k} {tuple(v.shape)} (model {tuple(expected[k].shape)})"
                       for k, v in state_dict.items()
                       if k in expected and hasattr(v, "shape") and v.shape != expected[k].shape)
    if not (missing or unexpected or misshaped):
        return

    def listed(title: str, keys: list[str]) -> list[str]:
        shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
        return [f"{title}: {shown}"] if keys else []

    found = listed("missing", missing) + listed("unexpected", unexpected) + listed("wrong shape", misshaped)
    raise CheckpointError(f"{source} does not match the model config: {'; '.join(found)}")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Generator, dict[str, Any]]:
    """(the Generator a checkpoint describes, its weights loaded; the mel settings it works on).

    `path`: our checkpoint (`save_generator`), a training checkpoint (`step_N.pt`), NVIDIA's
    `bigvgan_generator.pt` or a HiFi-GAN generator (`vocoder.hifigan_checkpoint`) with its
    `config.json` beside it, or a folder holding both.
    """
    generator, mel, _ = load_model_keys(path, device)
    return generator, mel


def load_model_keys(path: str | os.PathLike,
                    device: str | torch.device = "cpu") -> tuple[Generator, dict[str, Any], list[str]]:
    """`load_model`, plus the generator's state-dict keys as the file holds them, in its order (the
    order of an optimiser state saved with it, as NVIDIA's release does: see vocoder.training.init_from)."""
    weights, beside = _locate(Path(path))
    state = load_checkpoint(weights, "cpu")
    hifigan = hifigan_checkpoint.generator_state_dict(state)
    if hifigan is not None:  # HiFi-GAN's layout translated to ours, here at the boundary
        if beside is None:
            raise CheckpointError(hifigan_checkpoint.missing_config(weights))
        state = hifigan_checkpoint.as_our_checkpoint(hifigan, _read_json(beside))
    if not isinstance(state.get("generator"), Mapping):
        raise CheckpointError(f"{weights} is no vocoder checkpoint (no 'generator' state dict; keys: "
                              f"{sorted(map(str, state))[:6]}); accepted: {ACCEPTED}")
    record = read_model_config(state, str(weights), beside)
    try:
        generator = Generator.from_config(record["generator"])
        MelSpectrogram.from_config(record["mel"])  # settings it can compute (window within n_fft, ...)
    except ValueError as e:
        raise CheckpointError(f"the model config of {weights} does not describe a generator and its mel: {e}") from e
    saved = generator_state(state["generator"])
    state_dict = adapt_state_dict(generator, saved)
    check_state_dict(generator, state_dict, str(weights))
    generator.load_state_dict(state_dict)
    return generator.to(device), record["mel"], list(saved)


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """The Generator of a checkpoint (see `load_model`), its weights loaded; `generator.config` holds
    its keyword arguments."""
    return load_model(path, device)[0]
