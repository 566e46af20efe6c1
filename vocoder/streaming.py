"""Streaming vocoding: mel chunks in, audio pieces out as soon as they are final, equal to one pass.

Policy (O = `vocoder.overlap_frames`, the receptive field in frames; W = `piece_frames`): frames
arrive in chunks of any size. Audio for frame f is final once frame f + O has arrived (or the
stream has ended), because no output sample of frame f reaches further than O frames. Whenever
at least W final frames are waiting, the W oldest are vocoded in one window with O frames of
context on each side (fewer at the start of the stream) and only their audio is yielded:

    window [max(0, d − O), d + W + O)  →  piece = audio of frames [d, d + W),   d += W

When the chunks run out, the remaining frames [d, n) are vocoded with their left context and
yielded as the last piece (n − d < W + O). So every piece but the last holds exactly W frames of
audio (W·hop samples); each frame's audio is computed once, and a frame is read again only as
context of the windows next to it (in at most ⌈2·O / W⌉ other windows); a window is at most
W + 2·O frames and the buffer at most W + 2·O frames plus the chunk just received. Look-ahead: the piece holding
frame f is yielded once frame f + O + (W − 1 − f mod W) has arrived, so at W = 1 every frame is
out O frames after it came in; the first piece needs W + O frames.

What a generator's conditioning carries from piece to piece (a pitch source's phase) is an opaque
value that `Vocoder.vocode_window` returns and takes back; this module knows only windows.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import torch
from torch import Tensor

from .audio.mel_check import check_mel


class WindowVocoder(Protocol):
    """What streaming needs of a `vocoder.Vocoder`."""

    num_mels: int
    hop_size: int
    overlap_frames: int
    device: torch.device

    def vocode_window(self, mel: Tensor, first_frame: int, keep: tuple[int, int],
                      carry: Any = None) -> tuple[Tensor, Any]: ...


def _frames(chunk: object, index: int, num_mels: int) -> int:
    """Frames of one chunk [num_mels, n] (n ≥ 0); a ValueError/TypeError naming the chunk otherwise."""
    name = f"stream chunk {index}"
    if not isinstance(chunk, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor mel of shape [{num_mels}, frames], "
                        f"got a {type(chunk).__name__}")
    if chunk.ndim != 2:
        raise ValueError(f"{name}: expected a mel of shape [{num_mels}, frames], found shape {tuple(chunk.shape)}")
    if chunk.shape == (num_mels, 0):
        return 0  # an empty chunk adds nothing
    check_mel(chunk, num_mels, name)
    return chunk.shape[-1]


def stream(vocoder: WindowVocoder, chunks: Iterable[Tensor], piece_frames: int) -> Iterator[Tensor]:
    """Yield the audio of `chunks` (each [num_mels, n_i]) in pieces of piece_frames·hop samples (the
    last one shorter) as soon as they are final; their concatenation equals
    `vocoder(torch.cat(chunks, -1))`. Policy and latency: the module docstring."""
    if isinstance(piece_frames, bool) or not isinstance(piece_frames, numbers.Integral) or piece_frames < 1:
        raise ValueError(f"piece_frames must be an integer >= 1, got {piece_frames!r}")
    return _pieces(vocoder, iter(chunks), int(piece_frames))


def _pieces(vocoder: WindowVocoder, chunks: Iterator[Tensor], width: int) -> Iterator[Tensor]:
    """The generator behind `stream` (arguments checked)."""
    overlap = vocoder.overlap_frames
    buffer: list[Tensor] = []  # mel frames [base, received), in arrival order
    base = received = done = 0  # done: frames whose audio has been yielded
    carry = None  # what the last window handed on (vocode_window)

    def piece(stop: int) -> Tensor:
        """Audio of frames [done, stop), vocoded with the context the buffer holds around them."""
        nonlocal buffer, base, carry
        mel = torch.cat(buffer, dim=-1) if len(buffer) > 1 else buffer[0]
        start, end = max(0, done - overlap), min(received, stop + overlap)
        out, carry = vocoder.vocode_window(mel[:, start - base:end - base], start, (done - start, stop - start), carry)
        first = max(0, stop - overlap)  # what the next window needs
        buffer, base = [mel[:, first - base:]], first
        return out

    for index, chunk in enumerate(chunks):
        n = _frames(chunk, index, vocoder.num_mels)
        if n == 0:
            continue
        buffer.append(chunk.to(vocoder.device, torch.float32))
        received += n
        while received - overlap - done >= width:
            yield piece(done + width)
            done += width
    if received > done:
        yield piece(received)
