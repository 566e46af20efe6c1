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

A generator with a pitch source (O then covers its pitch predictor too) gets each window's F0 from
the window and the source's phase carried from piece to piece: the phase at frame d is the sum of the
phase steps (F0/rate per sample) of the frames yielded so far, each of which the window read exactly.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

from .vocoder import Vocoder, check_mel


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


def stream(vocoder: Vocoder, chunks: Iterable[Tensor], piece_frames: int) -> Iterator[Tensor]:
    """Yield the audio of `chunks` (each [num_mels, n_i]) in pieces of piece_frames·hop samples (the
    last one shorter) as soon as they are final; their concatenation equals
    `vocoder(torch.cat(chunks, -1))`. Policy and latency: the module docstring."""
    if isinstance(piece_frames, bool) or not isinstance(piece_frames, numbers.Integral) or piece_frames < 1:
        raise ValueError(f"piece_frames must be an integer >= 1, got {piece_frames!r}")
    return _pieces(vocoder, iter(chunks), int(piece_frames))


def _pieces(vocoder: Vocoder, chunks: Iterator[Tensor], width: int) -> Iterator[Tensor]:
    """The generator behind `stream` (arguments checked)."""
    overlap, hop = vocoder.overlap_frames, vocoder.hop_size
    buffer: list[Tensor] = []  # mel frames [base, received), in arrival order
    base = received = done = 0  # done: frames whose audio has been yielded
    phase_done = 0.0  # a pitch source's phase (cycles) at the first sample of frame `done`

    def piece(stop: int) -> Tensor:
        """Audio of frames [done, stop), vocoded with the context the buffer holds around them."""
        nonlocal buffer, base, phase_done
        mel = torch.cat(buffer, dim=-1) if len(buffer) > 1 else buffer[0]
        start, end = max(0, done - overlap), min(received, stop + overlap)
        window = mel[:, start - base:end - base]
        if vocoder.has_pitch_source:
            f0, voiced = vocoder.pitch(window)
            steps = vocoder.generator.source.sample_steps(f0[None])[0]
            phase = float(phase_done - steps[:(done - start) * hop].sum()) % 1.0
            audio = vocoder._vocode([window], [(f0, voiced, phase, start)])[0]
            phase_done = float(phase_done + steps[(done - start) * hop:(stop - start) * hop].sum()) % 1.0
        else:
            audio = vocoder.vocode_many([window])[0]
        keep = (stop - done) * hop
        out = audio[(done - start) * hop:(done - start) * hop + keep].clone()
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
