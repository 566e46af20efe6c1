"""`score_pair`: every metric of one (reference, generated) pair of waveforms, with notes on what was adjusted."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..audio import MelSpectrogram, resample
from .cepstral import mel_cepstral_distortion
from .envelope import envelope_correlation
from .mel_distance import mel_l1
from .periodicity import periodicity_metrics
from .pesq_score import pesq_wb
from .signals import UndefinedMetric, as_waveform
from .stft_distance import multi_resolution_stft_distance

# The metrics, named as in BigVGAN's and Vocos' tables, and env_corr (envelope correlation); higher is
# better for pesq, vuv_f1 and env_corr.
METRICS = ("pesq", "m_stft", "mcd", "periodicity", "vuv_f1", "mel_l1", "env_corr")
HIGHER_IS_BETTER = {"pesq": True, "m_stft": False, "mcd": False, "periodicity": False, "vuv_f1": True,
                    "mel_l1": False, "env_corr": True}
# The value a metric is scored at when the generated audio alone leaves it undefined (silent, a constant
# envelope, far shorter than its reference), so that a broken output never raises a mean: the bottom of
# each bounded metric's range. M-STFT, MCD and mel L1 have no worst value; such a file is left out of
# their mean, and the report says over how many files the mean is taken.
WORST = {"pesq": 1.0, "periodicity": 1.0, "vuv_f1": 0.0, "env_corr": -1.0}
LENGTH_TOLERANCE_HOPS = 3  # a length difference above this many mel hops is reported

# The mel of mel L1 when none is given: BigVGAN-v2's 100-band mel (n_fft = window 1024, hop 256, 0 … sr/2).
DEFAULT_MEL = {"n_fft": 1024, "num_mels": 100, "hop_size": 256, "win_size": 1024, "fmin": 0.0, "fmax": None}


class Scores(dict):
    """{metric name: value} (NaN where a metric is undefined for the pair), `notes`: what was
    adjusted (resampling, trimming) or could not be computed, one line each, and `worst`: the
    metrics scored at their WORST value because the generated audio left them undefined."""

    def __init__(self, values: dict[str, float], notes: list[str], worst: frozenset[str] = frozenset()) -> None:
        super().__init__(values)
        self.notes = notes
        self.worst = worst


def check_metrics(metrics: Sequence[str] | str) -> tuple[str, ...]:
    """`metrics` (names, or one name or comma-separated names as a string) as a tuple in METRICS
    order; a ValueError names any unknown one, or says that none was given."""
    if isinstance(metrics, str):
        metrics = [name.strip() for name in metrics.split(",") if name.strip()]
    unknown = [m for m in metrics if not isinstance(m, str) or m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; choose from {', '.join(METRICS)}")
    if not metrics:
        raise ValueError(f"no metric given; choose from {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in metrics)


def score_pair(reference: Tensor, generated: Tensor, sampling_rate: int, generated_rate: int | None = None,
               mel: MelSpectrogram | None = None, metrics: Sequence[str] = METRICS, pitch_model: str = "tiny",
               device: str | torch.device = "cpu") -> Scores:
    """Score `generated` against `reference`, mono (T,) waveforms in [-1, 1].

    `reference` is at `sampling_rate`; `generated` at `generated_rate` (default: the same) is
    resampled to it when they differ. `mel` (its sampling_rate must be `sampling_rate`) is the mel
    of mel L1; None: DEFAULT_MEL at that rate. Both signals are trimmed to the shorter; a
    difference of more than LENGTH_TOLERANCE_HOPS hops is noted. A metric without a value for this
    pair is NaN (the reference's doing: too short, no speech for PESQ), or its WORST value when the
    generated audio alone is why (silent, constant, far shorter than the reference); a note says
    which. `pitch_model`, `device`: of the periodicity metrics (torchcrepe).
    """
    chosen = check_metrics(metrics)
    sampling_rate = int(sampling_rate)
    ref = as_waveform(reference, "reference")
    gen = as_waveform(generated, "generated")
    if mel is None:
        mel = MelSpectrogram(sampling_rate=sampling_rate, **DEFAULT_MEL)
    elif int(mel.sampling_rate) != sampling_rate:
        raise ValueError(f"the mel is for {mel.sampling_rate} Hz but the reference is at {sampling_rate} Hz")
    notes: list[str] = []
    if generated_rate is not None and int(generated_rate) != sampling_rate:
        gen = resample(gen, int(generated_rate), sampling_rate)
        notes.append(f"generated audio resampled from {int(generated_rate)} Hz to {sampling_rate} Hz")
    difference = gen.shape[-1] - ref.shape[-1]
    generated_too_short = -difference > LENGTH_TOLERANCE_HOPS * mel.hop_size
    if abs(difference) > LENGTH_TOLERANCE_HOPS * mel.hop_size:
        longer, shorter = ("generated", "reference") if difference > 0 else ("reference", "generated")
        notes.append(f"lengths differ by {abs(difference)} samples ({abs(difference) / sampling_rate:.3f} s): "
                     f"the {longer} audio is trimmed to the {shorter}'s {min(len(ref), len(gen))}")
    n = min(ref.shape[-1], gen.shape[-1])
    ref, gen = ref[:n], gen[:n]

    values: dict[str, float] = {}
    worst: set[str] = set()

    def attempt(names: tuple[str, ...], compute) -> None:
        try:
            result = compute()
            values.update(result if isinstance(result, dict) else {names[0]: result})
        except UndefinedMetric as e:
            at_fault = e.generated_at_fault or generated_too_short
            scored = [name for name in names if at_fault and name in WORST]
            values.update({name: WORST[name] if name in scored else math.nan for name in names})
            worst.update(scored)
            shown = ", ".join(f"{name} {WORST[name]:g}" for name in scored)
            notes.append(f"{e}; scored at the worst value ({shown})" if scored else str(e))

    if "pesq" in chosen:
        attempt(("pesq",), lambda: pesq_wb(ref, gen, sampling_rate))
    if "m_stft" in chosen:
        attempt(("m_stft",), lambda: multi_resolution_stft_distance(ref, gen))
    if "mcd" in chosen:
        attempt(("mcd",), lambda: mel_cepstral_distortion(ref, gen, sampling_rate))
    pitch = tuple(m for m in chosen if m in ("periodicity", "vuv_f1"))
    if pitch:
        attempt(pitch, lambda: {k: v for k, v in periodicity_metrics(ref, gen, sampling_rate, pitch_model,
                                                                     device).items() if k in pitch})
    if "mel_l1" in chosen:
        attempt(("mel_l1",), lambda: mel_l1(ref, gen, mel.to("cpu")))
    if "env_corr" in chosen:
        attempt(("env_corr",), lambda: envelope_correlation(ref, gen, sampling_rate))
    return Scores({name: values[name] for name in chosen}, notes, frozenset(worst))
