"""MCD: mel-cepstral distortion in dB (Kubichek 1993), frame by frame, without time warping.

Analysis (both signals at the same rate sr): |STFT| with n_fft = window = 1024 (Hann), hop 256,
BigVGAN's framing (`vocoder.audio.stft_magnitude`); 80 Slaney mel bands from 0 to sr/2 (librosa's
filters); ln of the mel amplitude, floored at 1e-5. The mel-cepstrum c_0 … c_79 is the DCT-II of the
log-mel scaled so that ln M(m) = c_0 + 2·Σ_d c_d·cos(π·d·(m + ½)/80), the convention of SPTK's
mel-cepstra. MCD = (10 / ln 10) · sqrt(2 · Σ_{d=1..24} (c_d − ĉ_d)²), averaged over all frames
(c_0, the overall level, is left out). No DTW: a vocoder's output is aligned sample for sample with
its reference, so warping would only hide timing errors. 0 for identical audio.
"""

from __future__ import annotations

import math

import torch
from scipy.fft import dct
from torch import Tensor

from ..audio import mel_filterbank, stft_magnitude
from ..audio.mel import LOG_CLAMP
from .signals import UndefinedMetric, trim_to_shorter

MCD_N_FFT, MCD_HOP, MCD_BANDS = 1024, 256, 80
MCD_COEFFICIENTS = 24  # c_1 … c_24
DB_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstrum(wav: Tensor, sampling_rate: int) -> Tensor:
    """(T,) audio → (frames, 80) mel-cepstral coefficients c_0 … c_79 (see the module docstring)."""
    filters = mel_filterbank(int(sampling_rate), MCD_N_FFT, MCD_BANDS).double()
    window = torch.hann_window(MCD_N_FFT, dtype=torch.float64)
    mag = stft_magnitude(wav.double().reshape(1, -1), MCD_N_FFT, MCD_HOP, MCD_N_FFT, window)[0]
    log_mel = torch.log(torch.clamp(filters @ mag, min=LOG_CLAMP))  # (bands, frames)
    # scipy's unnormalised DCT-II is X_d = 2·Σ_m x_m cos(π d (2m+1) / 2K); c_d = X_d / 2K inverts as above
    return torch.from_numpy(dct(log_mel.T.numpy(), type=2, axis=-1) / (2 * MCD_BANDS))


def mel_cepstral_distortion(reference: Tensor, generated: Tensor, sampling_rate: int) -> float:
    """MCD in dB of `generated` against `reference`, (T,) each at `sampling_rate`, trimmed to the shorter."""
    ref, gen = trim_to_shorter(reference.reshape(-1), generated.reshape(-1))
    if ref.shape[-1] < MCD_N_FFT:
        raise UndefinedMetric(f"MCD is undefined for {ref.shape[-1]} samples; it needs at least {MCD_N_FFT}")
    diff = mel_cepstrum(ref, sampling_rate) - mel_cepstrum(gen, sampling_rate)
    per_frame = diff[:, 1:MCD_COEFFICIENTS + 1].square().sum(-1).sqrt()
    return float(DB_CONSTANT * per_frame.mean())
