"""Where and at what numeric precision a model runs: the device names and precisions that inference
and training share (`device=`, `train.device=`, `--device`; `precision=`, `train.precision=`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# name → the dtype the model computes in. fp32: float32 with IEEE convolutions (cuDNN's TF32 off);
# tf32: float32 with TF32 tensor-core convolutions on CUDA (PyTorch's default for cuDNN: faster,
# ~1e-3 relative error); bf16 / fp16: autocast to that dtype (the fused activations compute in fp32).
PRECISIONS = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# what `precision=` accepts: 'auto' (the default) is TF32 convolutions on CUDA, as PyTorch's own default
# and NVIDIA's BigVGAN run, and strict fp32 elsewhere (`resolve_precision`)
PRECISION_NAMES = ("auto", *PRECISIONS)
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device, index: int | None = None, name: str = "device") -> torch.device:
    """'auto' → CUDA when available, else the CPU; 'cuda' → CUDA device `index` (the current one when
    None); 'cuda:N' as given. A ValueError naming the argument `name` for anything else, and for CUDA
    without a CUDA device."""
    if isinstance(device, torch.device):
        return device
    text = str(device)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, number = text.partition(":")
    if kind not in DEVICES[1:] or (number and (kind != "cuda" or not number.isdigit())):
        raise ValueError(f"{name} must be one of {', '.join(DEVICES)} (or cuda:N), got {device!r}")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"{name}={device} but no CUDA device is available; use {name}=cpu or auto")
    if number:
        return torch.device("cuda", int(number))
    return torch.device("cuda", index) if index is not None else torch.device("cuda")


def check_precision(precision: str, name: str = "precision", training: bool = False) -> None:
    """A ValueError naming the argument `name` unless `precision` is one of PRECISION_NAMES (and, for
    training, not fp16: autocast to fp16 needs loss scaling, which the training step does not do)."""
    if precision not in PRECISION_NAMES:
        raise ValueError(f"{name} must be one of {', '.join(PRECISION_NAMES)}, got {precision!r}")
    if training and precision == "fp16":
        raise ValueError(f"{name}=fp16 is not supported for training (it needs loss scaling); use bf16")


def resolve_precision(precision: str, device: torch.device, name: str = "precision") -> str:
    """The PRECISIONS name `precision` means on `device`: 'auto' → 'tf32' on CUDA, 'fp32' elsewhere;
    any other name as given (checked, the error naming `name`)."""
    check_precision(precision, name)
    if precision != "auto":
        return precision
    return "tf32" if torch.device(device).type == "cuda" else "fp32"


def set_cudnn_benchmark(enabled: bool) -> None:
    """cuDNN times its convolution algorithms for each new input shape and keeps the fastest
    (torch.backends.cudnn.benchmark): a one-off cost per shape that fixed-size training segments
    and inference windows repay; the choice may differ between runs, so results may differ by rounding."""
    torch.backends.cudnn.benchmark = bool(enabled)


@contextlib.contextmanager
def conv_precision(precision: str, device: torch.device) -> Iterator[None]:
    """cuDNN's float32 convolutions as `precision` asks ('fp32': IEEE, 'tf32' and on CUDA 'auto': TF32) for
    a block, forward and backward alike, then restored; nothing changes for bf16/fp16 or off CUDA."""
    precision = resolve_precision(precision, device)
    if device.type != "cuda" or precision not in ("fp32", "tf32"):
        yield
        return
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    conv.fp32_precision = "ieee" if precision == "fp32" else "tf32"
    try:
        yield
    finally:
        conv.fp32_precision = before


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to bf16/fp16 for a model's forward pass; off for fp32/tf32/auto."""
    dtype = PRECISIONS[resolve_precision(precision, device)]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
