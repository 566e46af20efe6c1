"""Periodicity RMSE and V/UV F1 (CARGAN, Morrison et al. 2022, as Vocos reports them), from torchcrepe's pitch tracker.

Both signals are resampled to 16 kHz and analysed by CREPE in frames of 1024 samples every 10 ms
(160 samples, no padding: 1 + (T − 1024) // 160 frames), pitch range 50–550 Hz, Viterbi decoding
(torchcrepe's defaults otherwise). As in Vocos' metric: a frame whose A-weighted power spectrum
(librosa.perceptual_weighting of a 1024-point Hann STFT, minus torchcrepe's 20 dB reference) averages
below −60 dB is silent and gets periodicity 0; a frame is voiced when its periodicity is ≥ 0.21.
Periodicity RMSE = sqrt(mean over frames of (p_gen − p_ref)²); V/UV F1 = 2·TP / (2·TP + FP + FN)
over frames, the reference's voicing being the truth (1 when neither signal has a voiced frame).

CREPE model: 'tiny' by default (0.49 M parameters, 74 MFLOP per frame; 'full', which Vocos uses,
has 22 M and needs 2.8 GFLOP per frame, 38× more: minutes per clip on a 2-core CPU). The network
runs `batch_frames` frames at a time; the Viterbi decoding runs once over the whole signal, so the
result does not depend on the batch size.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torchaudio.functional as AF
import torchcrepe
from torch import Tensor

from ..audio import resample
from .signals import UndefinedMetric, as_waveform, trim_to_shorter

CREPE_RATE = torchcrepe.SAMPLE_RATE  # 16000
CREPE_WINDOW = torchcrepe.WINDOW_SIZE  # 1024
HOP = CREPE_RATE // 100  # 10 ms
FMIN, FMAX = 50.0, 550.0
SILENCE_DB = -60.0
VOICED_THRESHOLD = 0.21
PITCH_MODELS = ("tiny", "full")
CENTS_OF_BIN_0 = 1997.3794084376191  # torchcrepe.convert.bins_to_cents, before its dither


def _silent_frames(audio: Tensor) -> Tensor:
    """(T,) audio at 16 kHz → (frames,) bool: A-weighted mean power below SILENCE_DB."""
    power = AF.spectrogram(audio, pad=0, window=torch.hann_window(CREPE_WINDOW, device=audio.device),
                           n_fft=CREPE_WINDOW, hop_length=HOP, win_length=CREPE_WINDOW, power=2.0,
                           normalized=False, center=False)
    freqs = librosa.fft_frequencies(sr=CREPE_RATE, n_fft=CREPE_WINDOW)
    with np.errstate(divide="ignore"):  # A-weighting at 0 Hz is log10(0); librosa floors it at -80 dB
        weighted = librosa.perceptual_weighting(power.cpu().double().numpy(), freqs) - torchcrepe.loudness.REF_DB
    return torch.from_numpy(weighted.mean(axis=0) < SILENCE_DB)


@torch.inference_mode()
def _undithered_viterbi(logits: Tensor) -> tuple[Tensor, Tensor]:
    """torchcrepe's Viterbi decoding, its bins turned into Hz without the random dither it adds."""
    bins, _ = torchcrepe.decode.viterbi(logits)
    return bins, torchcrepe.convert.cents_to_frequency(torchcrepe.CENTS_PER_BIN * bins + CENTS_OF_BIN_0)


def pitch_and_periodicity(audio: Tensor, model: str = "tiny", device: str | torch.device = "cpu",
                          batch_frames: int = 512, dither: bool = True) -> tuple[Tensor, Tensor]:
    """(T,) audio at 16 kHz → (pitch in Hz, NaN where unvoiced; periodicity in [0, 1]), (frames,) each.
    `dither=False`: the pitch on CREPE's 20-cent grid, a fixed function of the audio (torchcrepe
    otherwise adds a random offset within ±1 bin); the periodicity is the same either way."""
    if model not in PITCH_MODELS:
        raise ValueError(f"pitch model must be one of {PITCH_MODELS}, got {model!r}")
    if audio.shape[-1] < CREPE_WINDOW:
        raise UndefinedMetric(f"periodicity is undefined for {audio.shape[-1] / CREPE_RATE:.3f} s of audio; "
                              f"CREPE needs at least {CREPE_WINDOW / CREPE_RATE:.3f} s")
    batch = audio.reshape(1, -1)
    logits = [torchcrepe.infer(frames, model, device)
              for frames in torchcrepe.preprocess(batch, CREPE_RATE, HOP, batch_frames, device, pad=False)]
    probabilities = torch.cat(logits).reshape(1, -1, torchcrepe.PITCH_BINS).transpose(1, 2)
    decoder = torchcrepe.decode.viterbi if dither else _undithered_viterbi
    pitch, periodicity = torchcrepe.postprocess(probabilities, FMIN, FMAX, decoder=decoder, return_periodicity=True)
    pitch, periodicity = pitch[0].cpu(), periodicity[0].cpu().clone()
    periodicity[_silent_frames(audio.cpu())] = 0.0
    pitch = torch.where(periodicity < VOICED_THRESHOLD, float("nan"), pitch)
    return pitch, periodicity


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
