"""CREPE pitch tracking (torchcrepe), shared by the periodicity metric and a pitch source's F0 targets.

Audio at 16 kHz is analysed in frames of 1024 samples every 10 ms (no padding: 1 + (T − 1024) // 160
frames), pitch range 50–550 Hz, Viterbi decoding. As in Vocos' metric, a frame whose A-weighted power
averages below −60 dB is silent (periodicity 0), and a frame is voiced when its periodicity is ≥ 0.21.
torchcrepe is imported where it is used, so a model without a pitch source never loads it.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor

CREPE_RATE = 16000  # torchcrepe.SAMPLE_RATE
CREPE_WINDOW = 1024  # torchcrepe.WINDOW_SIZE
HOP = CREPE_RATE // 100  # 10 ms
FMIN, FMAX = 50.0, 550.0
SILENCE_DB = -60.0
VOICED_THRESHOLD = 0.21
PITCH_MODELS = ("tiny", "full")
CENTS_OF_BIN_0 = 1997.3794084376191  # torchcrepe.convert.bins_to_cents, before its dither


class AudioTooShort(ValueError):
    """Audio shorter than one CREPE window: it has no pitch track."""


def _silent_frames(audio: Tensor) -> Tensor:
    """(T,) audio at 16 kHz → (frames,) bool: A-weighted mean power below SILENCE_DB."""
    import torchcrepe

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
    import torchcrepe

    bins, _ = torchcrepe.decode.viterbi(logits)
    return bins, torchcrepe.convert.cents_to_frequency(torchcrepe.CENTS_PER_BIN * bins + CENTS_OF_BIN_0)


def pitch_and_periodicity(audio: Tensor, model: str = "tiny", device: str | torch.device = "cpu",
                          batch_frames: int = 512, dither: bool = True) -> tuple[Tensor, Tensor]:
    """(T,) audio at 16 kHz → (pitch in Hz, NaN where unvoiced; periodicity in [0, 1]), (frames,) each.
    `dither=False`: the pitch on CREPE's 20-cent grid, a fixed function of the audio (torchcrepe
    otherwise adds a random offset within ±1 bin); the periodicity is the same either way."""
    if model not in PITCH_MODELS:
        raise ValueError(f"pitch model must be one of {PITCH_MODELS}, got {model!r}")
    import torchcrepe  # imported here: only models with a pitch source and the periodicity metric need it

    if audio.shape[-1] < CREPE_WINDOW:
        raise AudioTooShort(f"periodicity is undefined for {audio.shape[-1] / CREPE_RATE:.3f} s of audio; "
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
