"""PESQ wide-band (ITU-T P.862.2) at 16 kHz from the `pesq` package, as BigVGAN's validation reports it."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from ..audio import resample
from .signals import UndefinedMetric, as_waveform, trim_to_shorter

PESQ_RATE = 16000  # wide-band PESQ is defined at 16 kHz: both signals are resampled to it


def _has_utterances(audio16: np.ndarray) -> bool:
    """Whether PESQ finds speech in `audio16` (16 kHz) compared with itself."""
    from pesq import PesqError, pesq

    try:
        pesq(PESQ_RATE, audio16, audio16, "wb")
    except PesqError:
        return False
    return True


def pesq_wb(reference: Tensor, generated: Tensor, sampling_rate: int) -> float:
    """MOS-LQO (1.04 … 4.64; 4.64 for identical audio) of `generated` against `reference`.

    Both (T,) at `sampling_rate`, trimmed to the shorter, resampled to 16 kHz (torchaudio's sinc
    resampler, as NVIDIA's train.py) and given to `pesq.pesq(16000, ref, deg, "wb")` as float32
    (NVIDIA converts to int16 first; `pesq` scales both by their common peak either way).
    Raises UndefinedMetric when PESQ has no value: shorter than 0.25 s, or no speech found.
    """
    from pesq import BufferTooShortError, NoUtterancesError, PesqError, pesq  # here: inference never loads it

    ref, gen = trim_to_shorter(as_waveform(reference, "reference"), as_waveform(generated, "generated"))
    ref16 = resample(ref, int(sampling_rate), PESQ_RATE).numpy().astype(np.float32)
    gen16 = resample(gen, int(sampling_rate), PESQ_RATE).numpy().astype(np.float32)
    if not np.any(ref16):
        raise UndefinedMetric("PESQ is undefined: the reference is silent (all zeros)")
    if not np.any(gen16):
        raise UndefinedMetric("PESQ is undefined: the generated audio is silent (all zeros)", generated_at_fault=True)
    try:
        return float(pesq(PESQ_RATE, ref16, gen16, "wb"))
    except BufferTooShortError as e:
        raise UndefinedMetric(f"PESQ is undefined: {len(ref16) / PESQ_RATE:.3f} s of audio; it needs at least 0.25 s") from e
    except NoUtterancesError as e:
        if _has_utterances(ref16):  # the reference has speech: what PESQ cannot find is in the generated audio
            raise UndefinedMetric("PESQ is undefined: it found no speech (no utterances) in the generated audio",
                                  generated_at_fault=True) from e
        raise UndefinedMetric("PESQ is undefined: it found no speech (no utterances) in the reference") from e
    except PesqError as e:
        raise UndefinedMetric(f"PESQ failed: {e}") from e
