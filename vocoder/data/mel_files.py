"""Mel files (a log-mel [num_mels, frames] saved as `.npy` or `.pt`): one reader for inference inputs and
for the TTS mels of teacher-forced training pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import load_error

MEL_SUFFIXES = (".npy", ".pt")


def read_mel_file(path: Path, num_mels: int, shape_only: bool = False) -> Tensor | tuple[int, ...]:
    """`path` (`.npy`, or `.pt` holding a tensor or a dict with a 'mel' tensor) as a tensor of shape
    [bands, frames] in the file's dtype (the callers check or convert it), a leading axis of 1 dropped; with `shape_only` its shape alone (a `.npy`
    memory-mapped, not read). ValueError naming the file for one that cannot be read or is not 2-d;
    the band count is the caller's to check (`num_mels` is what the message asks for)."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, mmap_mode="r" if shape_only else None, allow_pickle=False)
            mel = array if shape_only else torch.from_numpy(np.asarray(array))
        else:
            mel = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(mel, dict) and "mel" in mel:
                mel = mel["mel"]
    except Exception as e:  # numpy and torch raise many kinds for a corrupt file
        raise ValueError(f"{path}: cannot read the mel file ({load_error(e)})") from e
    if not isinstance(mel, (Tensor, np.ndarray)):
        raise ValueError(f"{path}: holds a {type(mel).__name__}, not a mel tensor [num_mels, frames]")
    shape = tuple(mel.shape)
    if len(shape) == 3 and shape[0] == 1:
        shape, mel = shape[1:], mel[0]
    if len(shape) != 2:
        raise ValueError(f"{path}: expected a mel of shape [{num_mels}, frames], found shape {shape}")
    return shape if shape_only else mel


def is_floating(mel: Tensor | np.ndarray) -> bool:
    """Whether a mel (tensor or array) holds floating-point values (a mel of integers is no log-mel)."""
    return mel.is_floating_point() if isinstance(mel, Tensor) else bool(np.issubdtype(mel.dtype, np.floating))


def read_mel_header(path: Path, num_mels: int) -> tuple[tuple[int, ...], str, bool]:
    """(shape [bands, frames], dtype name, floating point?) of a mel file, a `.npy` read no further than
    its header; ValueError as `read_mel_file`."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            dtype, floating = str(array.dtype), is_floating(array)
            shape = read_mel_file(path, num_mels, shape_only=True)
            return shape, dtype, floating
    except ValueError:
        raise
    except Exception as e:  # numpy raises many kinds for a corrupt file
        raise ValueError(f"{path}: cannot read the mel file ({load_error(e)})") from e
    mel = read_mel_file(path, num_mels)
    return tuple(mel.shape), str(mel.dtype).replace("torch.", ""), is_floating(mel)
