"""Exact chunked inference: the generator's receptive field, overlapping mel windows, chunked mel.

A long mel is vocoded in windows with `overlap` frames of context on each side; only the audio of
their central frames is kept. When the overlap covers the receptive field no kept sample sees a
window edge, so the joined audio equals one pass. The derivation of the receptive field and its
measured values: docs/inference.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .audio import MelSpectrogram
from .layers.amp import conv_reach


def receptive_field(generator: nn.Module) -> int:
    """One-sided receptive field R of a `Generator`, in output samples (an upper bound), read from
    its modules: kernels, rates, and the `reach()` of each AMP block, activation and conditioning."""
    rates = [up[0].stride[0] for up in generator.ups]
    hop = math.prod(rates)
    reach = hop * conv_reach(generator.conv_pre)
    for i, up in enumerate(generator.ups):
        scale = math.prod(rates[i + 1:])  # output samples per sample of this stage
        blocks = generator.resblocks[i * generator.num_kernels:(i + 1) * generator.num_kernels]
        reach += scale * ((up[0].kernel_size[0] - 1) + max(b.reach() for b in blocks))
    reach += generator.activation_post.reach() + conv_reach(generator.conv_post)
    if generator.conditioning is not None:
        reach += hop * generator.conditioning.reach()
    return math.ceil(reach)


def overlap_frames(generator: nn.Module) -> int:
    """Mel frames of context per side that make chunked inference exact: ceil(R / hop)."""
    return math.ceil(receptive_field(generator) / generator.hop_length)


@dataclass(frozen=True)
class Window:
    """Mel frames [start, stop) go through the generator; the audio of frames [keep_start, keep_stop) is kept."""

    start: int
    stop: int
    keep_start: int
    keep_stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def plan_windows(frames: int, chunk_frames: int, overlap: int) -> list[Window]:
    """Windows covering `frames` mel frames, each keeping ≤ chunk_frames with ≥ overlap frames of context.

    A mel of at most chunk_frames + 2·overlap frames is one window. Longer ones keep chunk_frames
    per window; the first and last windows are chunk_frames + overlap long (the last one reaches
    back for more context rather than being short), the others chunk_frames + 2·overlap (slid to
    stay inside the mel), so the windows of every long mel have one of two lengths and batch together.
    """
    if frames < 1:
        raise ValueError(f"need at least one mel frame, got {frames}")
    if chunk_frames < 1 or overlap < 0:
        raise ValueError(f"need chunk_frames >= 1 and overlap >= 0, got {chunk_frames}, {overlap}")
    if frames <= chunk_frames + 2 * overlap:
        return [Window(0, frames, 0, frames)]
    windows = []
    for keep_start in range(0, frames, chunk_frames):
        keep_stop = min(keep_start + chunk_frames, frames)
        if keep_start == 0:
            start, stop = 0, chunk_frames + overlap
        elif keep_stop == frames:
            start, stop = frames - chunk_frames - overlap, frames
        else:  # slid inside [0, frames) where a neighbouring end is nearer than `overlap`
            start = min(max(keep_start - overlap, 0), frames - chunk_frames - 2 * overlap)
            stop = start + chunk_frames + 2 * overlap
        windows.append(Window(start, stop, keep_start, keep_stop))
    return windows


def chunked_mel(mel: MelSpectrogram, wav: torch.Tensor, chunk_frames: int = 8192) -> torch.Tensor:
    """`mel(wav)` computed chunk_frames frames at a time, for (T,) or (C, T) audio: the same frames
    (each STFT frame reads only its own n_fft samples) without the whole STFT in memory."""
    length = wav.shape[-1]
    total = mel.num_frames(length)
    if mel.center or total <= chunk_frames:
        return mel(wav)
    pad = (mel.n_fft - mel.hop_size) // 2  # each frame reads `pad` samples either side of its hop
    margin = math.ceil(pad / mel.hop_size)
    pieces = []
    for first in range(0, total, chunk_frames):
        last = min(first + chunk_frames, total)
        begin = max(0, first - margin) * mel.hop_size
        end = min(length, (last + margin) * mel.hop_size)
        frames = mel(wav[..., begin:end])
        skip = first - begin // mel.hop_size
        pieces.append(frames[..., skip:skip + last - first])
    return torch.cat(pieces, dim=-1)
