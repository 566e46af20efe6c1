"""ONNX export of a generator: mel (batch, num_mels, frames) → audio (batch, frames·hop) in plain ONNX ops.

The graph is traced from a copy of the generator built with eager activations (BigVGAN's formula:
replicate pad → transposed conv with the Kaiser filter → Snake/SnakeBeta → pad → strided conv), so no
Triton or custom op reaches it; weight norm is folded. A pitch source goes in whole: its predictor,
its sines, and the noise that is a function of the sample index (the same numbers as PyTorch).
The file's metadata carries the model record as JSON (`METADATA_KEY`: generator and mel settings),
so that a user can build the matching mel; `read_metadata` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .atomic import atomic_write
from .checkpoint import complete_model_config
from .chunking import overlap_frames
from .models.generator import Generator, check_mel_settings

# Chosen by measurement (docs/export.md): torch.export ("dynamo") traces the depthwise filter convs
# that the TorchScript-based exporter refuses; opset 18 is what the exporter targets natively.
OPSET = 18
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16}
METADATA_KEY = "vocoder.model"  # JSON: {"generator": Generator keyword arguments, "mel": mel settings}
INPUT_NAME, OUTPUT_NAME, PITCH_OUTPUTS = "mel", "audio", ("f0", "voiced")
INSTALL_HINT = 'ONNX export needs the export extra: pip install "vocoder[export]" (onnx, onnxscript, onnxruntime)'


class ExportError(ValueError):
    """An export that cannot be made as asked (an argument, an output path, a model it cannot take)."""


class _MelToAudio(nn.Module):
    """The exported function: fp32 mel in, fp32 audio (batch, samples) out, computing in `dtype`; a
    generator with a pitch source also returns the F0 (Hz) and voicing (0/1) it read, (batch, frames)."""

    def __init__(self, generator: Generator, dtype: torch.dtype) -> None:
        super().__init__()
        self.generator, self.dtype = generator, dtype

    def forward(self, mel: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        conditioning = self.generator.conditioning
        if conditioning is None:
            return self.generator(mel.to(self.dtype))[:, 0].float()
        f0, voiced = conditioning.predictor.predict(mel)  # in fp32 always: see _in_precision
        audio = self.generator(mel.to(self.dtype), condition={"f0": f0, "voiced": voiced})[:, 0].float()
        return audio, f0.float(), voiced.float()


def _in_precision(generator: Generator, dtype: torch.dtype) -> Generator:
    """`generator` cast to `dtype`, but for a pitch predictor, which stays fp32: its F0 is rounded to a
    grid, and fp16 logits would move it and with it the phase of every later sample."""
    generator = generator.to(dtype)
    if generator.conditioning is not None:
        generator.conditioning.predictor.float()
    return generator


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes that concern other models (torchvision ops it skips, deprecations inside
    torch) kept off the user's terminal; its errors still propagate."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def plain_generator(generator: Generator) -> Generator:
    """A copy of `generator` with eager (plain-PyTorch) activations and weight norm folded, in eval mode
    on the CPU; the original is left as it is."""
    copy = Generator.from_config(generator.config, impl="eager")
    copy.remove_weight_norm()
    state = {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
             for k, v in generator.state_dict().items()}
    copy.load_state_dict(state)  # weight-norm keys (g, v) fold into `weight` on loading
    return copy.eval().requires_grad_(False)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExportError(f"{name} must be a positive integer (a fixed size) or null (dynamic), got {value!r}")
    return value


def check_options(precision: str, frames: Any = None, batch: Any = None) -> tuple[int | None, int | None]:
    """(frames, batch) as ints or None after checking them and `precision`; an ExportError in one line."""
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return _optional_int(frames, "frames"), _optional_int(batch, "batch")


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """`path` as a Path after checking it can take the .onnx file: not a folder, not an existing file
    (unless `overwrite`), ending in .onnx; an ExportError in one line otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ExportError(f"output={path} is a folder; name the ONNX file to write (e.g. {path / 'model.onnx'})")
    if path.suffix.lower() != ".onnx":
        raise ExportError(f"output={path}: name the ONNX file to write, ending in .onnx")
    if path.exists() and not overwrite:
        raise ExportError(f"output={path} exists; it is kept (overwrite=true replaces it)")
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(f"output={path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"output={path}: the folder {existing} is not writable")
    return path


def export_onnx(generator: Generator, mel: Mapping[str, Any], path: str | os.PathLike, precision: str = "fp32",
                frames: int | None = None, batch: int | None = None, overwrite: bool = False) -> Path:
    """Write `generator` (with its `mel` settings) to the ONNX file `path`; returns the path.

    `precision`: "fp32", or "fp16" (computing in half precision, for GPU runtimes; input and output
    stay float32). `frames`, `batch`: fixed sizes for a static-shape engine (a streaming window of
    W + 2·overlap_frames frames), or None for dynamic. The file is written atomically; an existing
    one is replaced only with `overwrite`.
    """
    frames, batch = check_options(precision, frames, batch)
    if frames is not None and generator.conditioning is not None:
        raise ExportError("frames: a fixed window is refused for a model with a pitch source: its phase and "
                          "noise continue from window to window, which a window-sized graph does not take "
                          "(export it with dynamic frames)")
    try:
        check_mel_settings(generator.config, mel)
    except ValueError as e:
        raise ExportError(str(e)) from e
    path = check_output_path(path, overwrite)
    try:
        import onnx  # noqa: F401  (the exporter needs it and onnxscript)
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ExportError(f"{INSTALL_HINT}; missing: {e.name}") from e
    record = complete_model_config({"generator": generator.config, "mel": dict(mel)})
    dtype = PRECISIONS[precision]
    model = _MelToAudio(_in_precision(plain_generator(generator), dtype), dtype).eval()
    example = torch.zeros(batch or 2, generator.num_mels, frames or 64)
    dims = {}
    if batch is None:
        dims[0] = torch.export.Dim("batch")
    if frames is None:
        dims[2] = torch.export.Dim("frames")
    outputs = [OUTPUT_NAME, *(PITCH_OUTPUTS if generator.conditioning is not None else ())]
    with _quiet_exporter():
        program = torch.onnx.export(model, (example,), input_names=[INPUT_NAME], output_names=outputs,
                                    opset_version=OPSET, dynamo=True, dynamic_shapes={"mel": dims or None},
                                    verbose=False, optimize=True)
    proto = program.model_proto
    metadata = {METADATA_KEY: json.dumps(record, sort_keys=True),
                "sampling_rate": str(record["mel"]["sampling_rate"]), "hop_size": str(generator.hop_length),
                "num_mels": str(generator.num_mels), "precision": precision,
                "frames": "dynamic" if frames is None else str(frames),
                "batch": "dynamic" if batch is None else str(batch),
                "overlap_frames": str(overlap_frames(generator))}
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a file `export_onnx` wrote: "model" (the record: {"generator", "mel"}),
    sampling_rate, hop_size, num_mels, overlap_frames (ints), precision, frames and batch ("dynamic"
    or an int); a ValueError names a file without them."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(f"{path}: no {METADATA_KEY} metadata (not a file written by vocoder.export)")
    meta: dict[str, Any] = {"model": json.loads(props[METADATA_KEY]), "precision": props.get("precision")}
    for key in ("sampling_rate", "hop_size", "num_mels", "overlap_frames"):
        meta[key] = int(props[key])
    for key in ("frames", "batch"):
        meta[key] = props[key] if props[key] == "dynamic" else int(props[key])
    return meta
