"""`Vocoder`: a trained generator ready for inference — mel (or audio) in, waveform out, any length.

    from vocoder import Vocoder
    voc = Vocoder.from_checkpoint("runs/demo/checkpoints/step_300.pt")   # or NVIDIA's folder
    voc = Vocoder.from_pretrained("nvidia/bigvgan_v2_24khz_100band_256x")  # a Hugging Face hub id
    wav = voc(mel)                         # (num_mels, frames) → (frames · hop,)
    wav = voc.resynthesize(audio, 44100)   # resampled to voc.sampling_rate, mel, vocoded
    for piece in voc.stream(mel_chunks):   # audio pieces as soon as they are final (vocoder.streaming)
        ...

Long mels are vocoded in overlapping windows of `chunk_frames` frames (see `vocoder.chunking`),
which bounds memory and gives the same audio as one pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .audio import MelSpectrogram, check_audio_layout, check_sampling_rate, pcm_to_float, resample
from .audio.mel_check import check_mel
from .chunking import Window, chunked_mel, plan_windows, receptive_field
from .chunking import overlap_frames as default_overlap_frames
from .checkpoint import load_model
from .cuda_graphs import GraphedModule
from .hub import resolve_checkpoint
from .models.generator import Generator, check_mel_settings
from .models.pitch_conditioning import PitchCarry, SignalPitch
from .runtime import PRECISIONS, autocast, conv_precision, resolve_device, resolve_precision
from .streaming import stream


class Vocoder:
    """A generator in eval mode with weight norm folded, its mel settings, and chunked vocoding.

    `mel`: the mel settings the generator works on (a vocoder/configs/mel/*.yaml mapping, or
    `MelSpectrogram.config`); they must fit the generator (band count, hop). `chunk_frames`: mel
    frames whose audio one generator call keeps; `overlap_frames`: context on each side (default:
    the receptive field, `vocoder.chunking.overlap_frames`); `batch_size`: windows per generator
    call. `precision`: 'auto' (TF32 convolutions on CUDA, fp32 on the CPU) or one of
    `vocoder.runtime.PRECISIONS` ('fp32' strict, 'tf32', 'bf16', 'fp16'). `cuda_graphs`: replay each
    window shape's generator call as a CUDA graph (`vocoder.cuda_graphs`); None: on CUDA, off elsewhere.
    The generator is modified in place (weight norm folded, eval mode, moved to `device`).
    """

    def __init__(self, generator: Generator, mel: Mapping[str, Any], device: str | torch.device = "auto",
                 precision: str = "auto", chunk_frames: int = 4096, overlap_frames: int | None = None,
                 batch_size: int = 2, cuda_graphs: bool | None = None) -> None:
        if int(chunk_frames) < 1 or int(batch_size) < 1:
            raise ValueError(f"chunk_frames and batch_size must be >= 1, got {chunk_frames}, {batch_size}")
        check_mel_settings(generator.config, mel)
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = PRECISIONS[self.precision]
        generator.remove_weight_norm()
        self.generator = generator.eval().requires_grad_(False).to(self.device)
        self.num_mels, self.hop_size = generator.num_mels, generator.hop_length
        self.mel = MelSpectrogram.from_config(mel).to(self.device)
        self.sampling_rate = int(self.mel.sampling_rate)
        self.receptive_field = receptive_field(generator)  # one-sided, in output samples
        self.chunk_frames, self.batch_size = int(chunk_frames), int(batch_size)
        self.overlap_frames = default_overlap_frames(generator) if overlap_frames is None else int(overlap_frames)
        if self.overlap_frames < 0:
            raise ValueError(f"overlap_frames must be >= 0, got {overlap_frames}")
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError(f"cuda_graphs=True needs a CUDA device, got device={self.device}")
        use_graphs = self.device.type == "cuda" if cuda_graphs is None else bool(cuda_graphs)
        self.run_generator = GraphedModule(self.generator) if use_graphs else self.generator

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "auto",
                        precision: str = "auto", revision: str | None = None, **options: Any) -> "Vocoder":
        """Load our checkpoint, a training checkpoint (`step_N.pt`), NVIDIA's `bigvgan_generator.pt` or a
        HiFi-GAN `g_N`/`generator*` file (file, or the folder holding it with its config.json), safetensors
        generator weights, or a hub id at `revision` (a local path of the same spelling wins;
        `vocoder.hub`); `options` go to the constructor."""
        generator, mel = load_model(resolve_checkpoint(path, revision), "cpu")
        return cls(generator, mel, device=device, precision=precision, **options)

    @classmethod
    def from_pretrained(cls, repo_id: str, revision: str | None = None, device: str | torch.device = "auto",
                        precision: str = "auto", **options: Any) -> "Vocoder":
        """A BigVGAN checkpoint by Hugging Face hub id (`nvidia/bigvgan_v2_24khz_100band_256x`) at `revision`
        (branch, tag or commit; default main), from the hub cache or downloaded; see from_checkpoint."""
        return cls.from_checkpoint(repo_id, device=device, precision=precision, revision=revision, **options)

    def __call__(self, mel: Tensor) -> Tensor:
        """(num_mels, frames) → (frames·hop,) or (B, num_mels, frames) → (B, frames·hop), float32."""
        check_mel(mel, self.num_mels)
        if mel.ndim not in (2, 3):
            raise ValueError(f"expected a mel of shape [{self.num_mels}, frames] or [batch, "
                             f"{self.num_mels}, frames], found shape {tuple(mel.shape)}")
        if mel.ndim == 2:
            return self.vocode_many([mel])[0]
        return torch.stack(self.vocode_many(list(mel)))

    @torch.inference_mode()
    def vocode_many(self, mels: Sequence[Tensor]) -> list[Tensor]:
        """Vocode mels of any lengths, each (num_mels, frames_i) → (frames_i·hop,), float32.

        Every mel is cut into windows (`plan_windows`); windows of equal length, from one mel or
        several, go through the generator together, `batch_size` at a time. Nothing is padded, so
        the audio is the same as vocoding each mel alone in one pass. A generator with a
        conditioning reads it from the whole mel, and each window gets its place in it.
        """
        for i, mel in enumerate(mels):
            if mel.ndim != 2:
                raise ValueError(f"mel {i}: expected shape [{self.num_mels}, frames], found {tuple(mel.shape)}")
            check_mel(mel, self.num_mels, f"mel {i}")
        mels = [m.to(self.device, torch.float32) for m in mels]
        return self._vocode(mels, [self._signal(m) for m in mels])

    @property
    def has_pitch_source(self) -> bool:
        """Whether the generator makes its harmonics from an F0 (model.pitch_source)."""
        return self.generator.conditioning is not None

    @torch.inference_mode()
    def pitch(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        """The F0 (Hz) and voicing (0/1) a pitch-source generator reads from a mel (num_mels, frames):
        (frames,) each, float32."""
        if not self.has_pitch_source:
            raise ValueError("this model has no pitch source (model.pitch_source), so it predicts no F0")
        check_mel(mel, self.num_mels)
        with conv_precision(self.precision, self.device), autocast(self.precision, self.device):
            f0, voiced = self.generator.conditioning.predictor.predict(mel.to(self.device, torch.float32)[None])
        return f0[0].float(), voiced[0].float()

    def _signal(self, mel: Tensor, first_frame: int = 0, keep_start: int = 0,
                carry: PitchCarry | None = None) -> SignalPitch | None:
        """What the generator's conditioning reads from a whole mel (or a window of a signal), else None."""
        if self.generator.conditioning is None:
            return None
        return self.generator.conditioning.signal(*self.pitch(mel), first_frame, keep_start, carry)

    @torch.inference_mode()
    def vocode_window(self, mel: Tensor, first_frame: int, keep: tuple[int, int],
                      carry: PitchCarry | None = None) -> tuple[Tensor, PitchCarry | None]:
        """The audio of frames [keep[0], keep[1]) of `mel` (num_mels, frames), a window whose first
        frame is frame `first_frame` of a longer signal, the rest of it context; and what to pass as
        `carry` for the window that keeps the frames next (None for a signal's first window).
        What `vocoder.streaming` is built on; the carry is opaque."""
        check_mel(mel, self.num_mels)
        if mel.ndim != 2 or not 0 <= keep[0] < keep[1] <= mel.shape[-1] or first_frame < 0:
            raise ValueError(f"vocode_window: need a mel [num_mels, frames], 0 <= keep[0] < keep[1] <= frames and "
                             f"first_frame >= 0; got shape {tuple(mel.shape)}, keep {tuple(keep)}, "
                             f"first_frame {first_frame}")
        mel = mel.to(self.device, torch.float32)
        signal = self._signal(mel, first_frame, keep[0], carry)
        audio = self._vocode([mel], [signal])[0][keep[0] * self.hop_size:keep[1] * self.hop_size].clone()
        if signal is not None:
            carry = self.generator.conditioning.carry(signal, keep[0], keep[1], carry)
        return audio, carry

    @torch.inference_mode()
    def _vocode(self, mels: list[Tensor], signals: list[SignalPitch | None]) -> list[Tensor]:
        """`vocode_many` on checked mels, each with what its conditioning read from it (or None)."""
        outputs = [torch.empty(m.shape[-1] * self.hop_size, device=self.device) for m in mels]
        hop, conditioning = self.hop_size, self.generator.conditioning
        by_length: dict[int, list[tuple[int, Window]]] = {}
        for i, mel in enumerate(mels):
            for window in plan_windows(mel.shape[-1], self.chunk_frames, self.overlap_frames):
                by_length.setdefault(window.length, []).append((i, window))
        for jobs in by_length.values():
            for first in range(0, len(jobs), self.batch_size):
                batch = jobs[first:first + self.batch_size]
                x = torch.stack([mels[i][:, w.start:w.stop] for i, w in batch])
                condition = None
                if conditioning is not None:
                    placed = [conditioning.window(signals[i], w.start, w.stop, w.keep_start) for i, w in batch]
                    condition = {k: torch.stack([p[k] for p in placed]) for k in placed[0]}
                with conv_precision(self.precision, self.device), autocast(self.precision, self.device):
                    y = self.run_generator(x, condition)
                for (i, w), audio in zip(batch, y[:, 0].float()):
                    outputs[i][w.keep_start * hop:w.keep_stop * hop] = \
                        audio[(w.keep_start - w.start) * hop:(w.keep_stop - w.start) * hop]
        return outputs

    def stream(self, chunks: Iterable[Tensor], piece_frames: int = 32) -> Iterator[Tensor]:
        """Mel chunks [num_mels, n_i] in, audio pieces (piece_frames·hop samples, the last shorter) out as
        soon as they are final; concatenated they equal `self(torch.cat(chunks, -1))`. A piece waits for
        `overlap_frames` frames of look-ahead; the policy and its latency: `vocoder.streaming`."""
        return stream(self, chunks, piece_frames)

    @torch.inference_mode()
    def mel_spectrogram(self, wav: Tensor, sampling_rate: int | None = None) -> Tensor:
        """Log-mel of (T,) or (C, T) audio, resampled first when sampling_rate differs from the model's.

        Float audio is taken as samples in [-1, 1]; integer PCM (int16, int32, int8, uint8) is scaled
        to [-1, 1] first, as soundfile reads it (int16: /32768); other types raise a TypeError.
        """
        wav = pcm_to_float(wav, "audio")
        if sampling_rate is not None:
            sampling_rate = check_sampling_rate(sampling_rate)
        check_audio_layout(wav)
        wav = wav.to(self.device)
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            wav = resample(wav, sampling_rate, self.sampling_rate)
        return chunked_mel(self.mel, wav)

    def resynthesize(self, wav: Tensor, sr: int) -> Tensor:
        """Audio at `sr` → resampled to `sampling_rate` → mel → vocoded: (T,) → (T',), (C, T) → (C, T').

        `wav`: float samples in [-1, 1], or integer PCM (int16, int32, int8, uint8), which is scaled
        to [-1, 1] first (int16 / 32768, as soundfile reads it); int64, bool and complex tensors are
        refused with a TypeError. T' = frames·hop with frames = T_resampled // hop (the mel's frames).
        """
        try:
            sr = check_sampling_rate(sr, "sr")
        except ValueError as err:
            raise ValueError(f"resynthesize: {err}") from None
        mel = self.mel_spectrogram(wav, sr)
        if mel.ndim == 2:
            return self.vocode_many([mel])[0]
        return torch.stack(self.vocode_many(list(mel)))

    def export_onnx(self, path: str | os.PathLike, precision: str = "fp32", frames: int | None = None,
                    batch: int | None = None, overwrite: bool = False) -> Path:
        """Write this vocoder as an ONNX file (mel → audio, dynamic batch and frames unless fixed, the
        model record in its metadata); see `vocoder.onnx_export.export_onnx`."""
        from .onnx_export import export_onnx

        return export_onnx(self.generator, self.mel.config, path, precision=precision, frames=frames,
                           batch=batch, overwrite=overwrite)

    def __repr__(self) -> str:
        return (f"Vocoder(sampling_rate={self.sampling_rate}, hop_size={self.hop_size}, "
                f"num_mels={self.num_mels}, device={self.device}, precision={self.precision}, "
                f"chunk_frames={self.chunk_frames}, overlap_frames={self.overlap_frames})")

