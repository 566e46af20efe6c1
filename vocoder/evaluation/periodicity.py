"""Periodicity RMSE and V/UV F1 (CARGAN, Morrison et al. 2022, as Vocos reports them), from CREPE's
pitch tracks (`vocoder.audio.pitch`).

Both signals are resampled to 16 kHz and tracked. Periodicity RMSE = sqrt(mean over frames of
(p_gen − p_ref)²); V/UV F1 = 2·TP / (2·TP + FP + FN) over frames, the reference's voicing being the
truth (1 when neither signal has a voiced frame). CREPE model: 'tiny' by default ('full', which Vocos
uses, costs 38× more: figures in docs/evaluation.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..audio import resample
from ..audio.pitch import CREPE_RATE, PITCH_MODELS, AudioTooShort
from ..audio.pitch import pitch_and_periodicity as crepe_pitch_and_periodicity
from .signals import UndefinedMetric, as_waveform, trim_to_shorter

__all__ = ["PITCH_MODELS", "periodicity_metrics", "pitch_and_periodicity"]


def pitch_and_periodicity(audio: Tensor, model: str = "tiny", device: str | torch.device = "cpu",
                          batch_frames: int = 512, dither: bool = True) -> tuple[Tensor, Tensor]:
    """`vocoder.audio.pitch.pitch_and_periodicity`; audio too short to track is an UndefinedMetric."""
    try:
        return crepe_pitch_and_periodicity(audio, model, device, batch_frames, dither)
    except AudioTooShort as e:
        raise UndefinedMetric(str(e)) from e


def periodicity_metrics(reference: Tensor, generated: Tensor, sampling_rate: int, model: str = "tiny",
                        device: str | torch.device = "cpu", batch_frames: int = 512) -> dict[str, float]:
    """{'periodicity': RMSE, 'vuv_f1': F1} of `generated` against `reference`, (T,) each at `sampling_rate`."""
    ref, gen = trim_to_shorter(as_waveform(reference, "reference"), as_waveform(generated, "generated"))
    ref16, gen16 = (resample(x, int(sampling_rate), CREPE_RATE).to(device) for x in (ref, gen))
    ref_pitch, ref_periodicity = pitch_and_periodicity(ref16, model, device, batch_frames)
    gen_pitch, gen_periodicity = pitch_and_periodicity(gen16, model, device, batch_frames)
    rmse = float((gen_periodicity - ref_periodicity).square().mean().sqrt())
    true, found = ~torch.isnan(ref_pitch), ~torch.isnan(gen_pitch)
    tp, fp, fn = int((true & found).sum()), int((~true & found).sum()), int((true & ~found).sum())
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return {"periodicity": rmse, "vuv_f1": f1}
