"""Envelope correlation and silent-mel RMS: does a vocoder's output follow the speech's loudness, and stay
quiet where the mel is silent (what a drone or a buzz fails, whatever its spectrum)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .signals import UndefinedMetric

FRAME_SECONDS = 0.010  # 10 ms frames
FLOOR_DB = -80.0  # frame RMS floored at -80 dBFS
SILENCE_SECONDS = 1.0


def frame_rms_db(audio: Tensor, sampling_rate: int) -> Tensor:
    """RMS of consecutive 10 ms frames of a (T,) waveform, in dBFS, floored at FLOOR_DB (a partial last
    frame is dropped)."""
    n = max(1, round(FRAME_SECONDS * sampling_rate))
    frames = audio.double()[: audio.shape[-1] // n * n].reshape(-1, n)
    rms = frames.pow(2).mean(-1).sqrt()
    return (20 * torch.log10(rms.clamp_min(10 ** (FLOOR_DB / 20)))).float()


def envelope_correlation(reference: Tensor, generated: Tensor, sampling_rate: int) -> float:
    """Pearson correlation of the two signals' 10 ms frame-RMS envelopes in dB (1: the output's loudness
    follows the reference's); UndefinedMetric when either envelope is constant or under two frames long."""
    ref, gen = frame_rms_db(reference, sampling_rate), frame_rms_db(generated, sampling_rate)
    frames = min(ref.shape[-1], gen.shape[-1])
    if frames < 2:
        raise UndefinedMetric("envelope correlation is undefined: under two 10 ms frames of audio")
    ref, gen = ref[:frames].double(), gen[:frames].double()
    ref, gen = ref - ref.mean(), gen - gen.mean()
    norm = float(ref.norm() * gen.norm())
    if norm == 0.0:
        if float(ref.norm()) == 0.0:
            raise UndefinedMetric("envelope correlation is undefined: the reference has a constant envelope")
        raise UndefinedMetric("envelope correlation is undefined: the generated audio has a constant envelope",
                              generated_at_fault=True)
    return float((ref * gen).sum()) / norm


def silent_mel_rms(vocode: Callable[[Tensor], Tensor], mel: Callable[[Tensor], Tensor], sampling_rate: int,
                   seconds: float = SILENCE_SECONDS) -> float:
    """RMS of what `vocode` ((num_mels, frames) log-mel → (T,) audio) makes of the mel (`mel`: (T,) audio →
    (num_mels, frames)) of `seconds` of digital silence; a vocoder that stays quiet gives about 0."""
    silence = torch.zeros(round(seconds * sampling_rate))
    with torch.inference_mode():
        audio = vocode(mel(silence))
    return float(audio.detach().double().pow(2).mean().sqrt())
