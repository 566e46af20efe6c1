"""`Vocoder`: a trained generator ready for inference — mel (or audio) in, waveform out, any length.

    from vocoder import Vocoder
    voc = Vocoder.from_checkpoint("runs/demo/checkpoints/step_300.pt")   # or NVIDIA's folder
    wav = voc(mel)                         # (num_mels, frames) → (frames · hop,)
    wav = voc.resynthesize(audio, 44100)   # resampled to voc.sampling_rate, mel, vocoded

Long mels are vocoded in overlapping windows of `chunk_frames` frames (see `vocoder.chunking`),
which bounds memory and gives the same audio as one pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from .audio import MelSpectrogram, pcm_to_float, resample
from .chunking import Window, chunked_mel, plan_windows, receptive_field
from .chunking import overlap_frames as default_overlap_frames
from .checkpoint import load_generator
from .models.generator import Generator

# fp32: IEEE float32 convolutions (cuDNN's TF32 off during the call, so chunked, batched and whole
# inference agree to ~1e-6); tf32: float32 with TF32 tensor-core convolutions on CUDA (PyTorch's
# default for cuDNN; faster, ~1e-3 relative error); bf16/fp16: the generator under autocast.
PRECISIONS = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' → CUDA when available, else CPU; 'cuda' without a CUDA device is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device} but no CUDA device is available; use device=cpu or auto")
    if str(device).split(":")[0] not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES} (or cuda:N), got {device!r}")
    return torch.device(device)


@contextlib.contextmanager
def _cudnn_conv_precision(value: str) -> Iterator[None]:
    """Set cuDNN's float32 convolution precision ('ieee' or 'tf32') for a block, then restore it."""
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    conv.fp32_precision = value
    try:
        yield
    finally:
        conv.fp32_precision = before


def check_mel(mel: Tensor, num_mels: int, name: str = "mel") -> None:
    """Raise a ValueError naming `name` for a mel that is not (…, num_mels, frames ≥ 1) of finite values."""
    if mel.ndim < 2:
        raise ValueError(f"{name}: expected a mel of shape [{num_mels}, frames], found shape {tuple(mel.shape)}")
    bands, frames = mel.shape[-2:]
    if bands != num_mels:
        hint = " (it looks transposed: [frames, bands])" if frames == num_mels else ""
        raise ValueError(f"{name}: expected {num_mels} mel bands, found {bands}{hint}; "
                         f"shape {tuple(mel.shape)}")
    if frames == 0:
        raise ValueError(f"{name}: the mel has no frames (empty)")
    if not mel.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point mel, found {mel.dtype}")
    bad = int((~torch.isfinite(mel)).sum())
    if bad:
        raise ValueError(f"{name}: {bad} of {mel.numel()} mel values are NaN or Inf")


class Vocoder:
    """A generator in eval mode with weight norm folded, its mel settings, and chunked vocoding.

    `chunk_frames`: mel frames whose audio one generator call keeps; `overlap_frames`: context on
    each side (default: the receptive field, `vocoder.chunking.overlap_frames`); `batch_size`:
    windows per generator call. `precision`: 'fp32' (strict: TF32 off on CUDA), 'tf32', or
    'bf16'/'fp16' (the generator under autocast); see PRECISIONS.
    The generator is modified in place (weight norm folded, eval mode, moved to `device`).
    """

    def __init__(self, generator: Generator, config: Mapping[str, Any] | None = None,
                 device: str | torch.device = "auto", precision: str = "fp32", chunk_frames: int = 1024,
                 overlap_frames: int | None = None, batch_size: int = 8) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
        if int(chunk_frames) < 1 or int(batch_size) < 1:
            raise ValueError(f"chunk_frames and batch_size must be >= 1, got {chunk_frames}, {batch_size}")
        self.config = dict(generator.config if config is None else config)
        missing = [k for k in ("sampling_rate", "hop_size", "n_fft", "win_size") if k not in self.config]
        if missing:
            raise ValueError(f"the model config lacks the mel settings {missing}")
        self.device = resolve_device(device)
        self.precision, self.dtype = precision, PRECISIONS[precision]
        generator.remove_weight_norm()
        self.generator = generator.eval().requires_grad_(False).to(self.device)
        self.num_mels, self.hop_size = generator.num_mels, generator.hop_length
        self.sampling_rate = int(self.config["sampling_rate"])
        self.mel = MelSpectrogram.from_config(self.config).to(self.device)
        self.receptive_field = receptive_field(generator)  # one-sided, in output samples
        self.chunk_frames, self.batch_size = int(chunk_frames), int(batch_size)
        self.overlap_frames = default_overlap_frames(generator) if overlap_frames is None else int(overlap_frames)
        if self.overlap_frames < 0:
            raise ValueError(f"overlap_frames must be >= 0, got {overlap_frames}")

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "auto",
                        precision: str = "fp32", **options: Any) -> "Vocoder":
        """Load our checkpoint, a training checkpoint (`step_N.pt`), or NVIDIA's `bigvgan_generator.pt`
        (file, or the folder holding it with its config.json); `options` go to the constructor."""
        generator = load_generator(path, "cpu")
        return cls(generator, device=device, precision=precision, **options)

    def _precision(self) -> contextlib.AbstractContextManager:
        """The numerics of one generator call: autocast for bf16/fp16, cuDNN's TF32 off (fp32) or on (tf32)."""
        if self.dtype != torch.float32:
            return torch.autocast(self.device.type, dtype=self.dtype)
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return _cudnn_conv_precision("tf32" if self.precision == "tf32" else "ieee")

    def __call__(self, mel: Tensor) -> Tensor:
        """(num_mels, frames) → (frames·hop,) or (B, num_mels, frames) → (B, frames·hop), float32."""
        if mel.ndim not in (2, 3):
            raise ValueError(f"expected a mel of shape [{self.num_mels}, frames] or [batch, "
                             f"{self.num_mels}, frames], found shape {tuple(mel.shape)}")
        check_mel(mel, self.num_mels)
        if mel.ndim == 2:
            return self.vocode_many([mel])[0]
        return torch.stack(self.vocode_many(list(mel)))

    @torch.inference_mode()
    def vocode_many(self, mels: Sequence[Tensor]) -> list[Tensor]:
        """Vocode mels of any lengths, each (num_mels, frames_i) → (frames_i·hop,), float32.

        Every mel is cut into windows (`plan_windows`); windows of equal length, from one mel or
        several, go through the generator together, `batch_size` at a time. Nothing is padded, so
        the audio is the same as vocoding each mel alone in one pass.
        """
        for i, mel in enumerate(mels):
            if mel.ndim != 2:
                raise ValueError(f"mel {i}: expected shape [{self.num_mels}, frames], found {tuple(mel.shape)}")
            check_mel(mel, self.num_mels, f"mel {i}")
        mels = [m.to(self.device, torch.float32) for m in mels]
        outputs = [torch.empty(m.shape[-1] * self.hop_size, device=self.device) for m in mels]
        by_length: dict[int, list[tuple[int, Window]]] = {}
        for i, mel in enumerate(mels):
            for window in plan_windows(mel.shape[-1], self.chunk_frames, self.overlap_frames):
                by_length.setdefault(window.length, []).append((i, window))
        hop = self.hop_size
        for jobs in by_length.values():
            for first in range(0, len(jobs), self.batch_size):
                batch = jobs[first:first + self.batch_size]
                x = torch.stack([mels[i][:, w.start:w.stop] for i, w in batch])
                with self._precision():
                    y = self.generator(x)
                for (i, w), audio in zip(batch, y[:, 0].float()):
                    outputs[i][w.keep_start * hop:w.keep_stop * hop] = \
                        audio[(w.keep_start - w.start) * hop:(w.keep_stop - w.start) * hop]
        return outputs

    @torch.inference_mode()
    def mel_spectrogram(self, wav: Tensor, sampling_rate: int | None = None) -> Tensor:
        """Log-mel of (T,) or (C, T) audio, resampled first when sampling_rate differs from the model's.

        Float audio is taken as samples in [-1, 1]; integer PCM (int16, int32, int8, uint8) is scaled
        to [-1, 1] first, as soundfile reads it (int16: /32768); other types raise a TypeError.
        """
        wav = pcm_to_float(wav, "audio")
        if wav.ndim not in (1, 2) or wav.shape[-1] == 0:
            raise ValueError(f"expected audio of shape (samples,) or (channels, samples), found {tuple(wav.shape)}")
        wav = wav.to(self.device)
        if sampling_rate is not None and int(sampling_rate) != self.sampling_rate:
            wav = resample(wav, int(sampling_rate), self.sampling_rate)
        return chunked_mel(self.mel, wav)

    def resynthesize(self, wav: Tensor, sr: int) -> Tensor:
        """Audio at `sr` → resampled to `sampling_rate` → mel → vocoded: (T,) → (T',), (C, T) → (C, T').

        `wav`: float samples in [-1, 1], or integer PCM (int16, int32, int8, uint8), which is scaled
        to [-1, 1] first (int16 / 32768, as soundfile reads it); int64, bool and complex tensors are
        refused with a TypeError. T' = frames·hop with frames = T_resampled // hop (the mel's frames).
        """
        mel = self.mel_spectrogram(wav, sr)
        if mel.ndim == 2:
            return self.vocode_many([mel])[0]
        return torch.stack(self.vocode_many(list(mel)))

    def __repr__(self) -> str:
        return (f"Vocoder(sampling_rate={self.sampling_rate}, hop_size={self.hop_size}, "
                f"num_mels={self.num_mels}, device={self.device}, precision={self.precision}, "
                f"chunk_frames={self.chunk_frames}, overlap_frames={self.overlap_frames})")

