"""Griffin-Lim resynthesis from a BigVGAN log-mel (librosa's mel inversion and Griffin-Lim): the
non-neural reference point of the evaluation tables, from exactly the mel a vocoder is given.

The log-mel is exponentiated, mapped back to a linear magnitude spectrogram by non-negative least
squares on the same Slaney filters (`librosa.feature.inverse.mel_to_stft`, power 1: BigVGAN's mel is
of magnitudes), and phases are estimated by `librosa.griffinlim` (fast Griffin-Lim, momentum 0.99,
random initial phases from a fixed seed, so the output is reproducible). The STFT uses BigVGAN's
framing (`vocoder.audio.mel`: (n_fft − hop) / 2 samples of padding each side, frames not centred),
so the output has frames · hop samples and lines up with the audio the mel came from.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import Tensor

from .mel import MelSpectrogram

GRIFFIN_LIM_ITERATIONS = 64  # librosa's default is 32; 64 gains ~0.1 PESQ-wb on the demo clips


def griffin_lim(log_mel: Tensor, mel: MelSpectrogram, n_iter: int = GRIFFIN_LIM_ITERATIONS, seed: int = 0) -> Tensor:
    """(num_mels, frames) log-mel made by `mel` → (frames · hop,) float32 waveform."""
    if log_mel.ndim != 2 or log_mel.shape[0] != mel.num_mels:
        raise ValueError(f"expected a log-mel of shape [{mel.num_mels}, frames], found {tuple(log_mel.shape)}")
    if mel.center:
        raise ValueError("griffin_lim inverts BigVGAN's uncentred framing (MelSpectrogram(center=False))")
    if int(n_iter) < 1:
        raise ValueError(f"n_iter must be at least 1, got {n_iter}")
    magnitude_mel = np.exp(log_mel.detach().to("cpu", torch.float64).numpy())
    magnitude = librosa.feature.inverse.mel_to_stft(magnitude_mel, sr=mel.sampling_rate, n_fft=mel.n_fft,
                                                    power=1.0, fmin=mel.fmin, fmax=mel.fmax)
    wav = librosa.griffinlim(magnitude, n_iter=int(n_iter), hop_length=mel.hop_size, win_length=mel.win_size,
                             n_fft=mel.n_fft, window="hann", center=False, momentum=0.99,
                             init="random", random_state=int(seed))
    pad = (mel.n_fft - mel.hop_size) // 2
    return torch.from_numpy(wav[pad:pad + log_mel.shape[-1] * mel.hop_size].astype(np.float32))


class GriffinLimVocoder:
    """Griffin-Lim behind the part of `vocoder.Vocoder`'s interface that `vocoder.infer.infer_files`
    uses (sampling_rate, num_mels, batch_size, mel_spectrogram, vocode_many), so it resynthesises
    files the way a model does."""

    batch_size = 1

    def __init__(self, mel: MelSpectrogram, n_iter: int = GRIFFIN_LIM_ITERATIONS, seed: int = 0) -> None:
        if int(n_iter) < 1:
            raise ValueError(f"griffin_lim_iters must be at least 1, got {n_iter}")
        self.mel, self.n_iter, self.seed = mel.to("cpu"), int(n_iter), int(seed)
        self.sampling_rate, self.num_mels, self.hop_size = int(mel.sampling_rate), int(mel.num_mels), int(mel.hop_size)

    @torch.inference_mode()
    def mel_spectrogram(self, wav: Tensor) -> Tensor:
        """Log-mel of (T,) or (C, T) audio at `sampling_rate`."""
        return self.mel(wav.to("cpu", torch.float32))

    def vocode_many(self, mels: list[Tensor]) -> list[Tensor]:
        """Each (num_mels, frames) log-mel → (frames · hop,) waveform."""
        return [griffin_lim(m, self.mel, self.n_iter, self.seed) for m in mels]

    def __repr__(self) -> str:
        return (f"GriffinLim(sampling_rate={self.sampling_rate}, num_mels={self.num_mels}, hop_size={self.hop_size}, "
                f"n_fft={self.mel.n_fft}, iterations={self.n_iter})")
