"""Audio: BigVGAN-compatible log-mel spectrogram, its Griffin-Lim inversion, constant-Q transform, audio file I/O, resampling."""

from .cqt import ConstantQTransform
from .griffin_lim import GRIFFIN_LIM_ITERATIONS, GriffinLimVocoder, griffin_lim
from .io import (MIN_SAMPLING_RATE, AudioError, AudioInfo, check_audio_layout, check_sampling_rate, load_audio,
                 not_a_tensor, pcm_to_float, resample, save_audio)
from .mel import SETTINGS as MEL_SETTINGS
from .mel import MelSpectrogram, mel_filterbank, mel_spectrogram, num_frames, stft_magnitude, stft_min_samples

__all__ = [
    "AudioError",
    "MIN_SAMPLING_RATE",
    "check_audio_layout",
    "check_sampling_rate",
    "not_a_tensor",
    "AudioInfo",
    "ConstantQTransform",
    "GRIFFIN_LIM_ITERATIONS",
    "GriffinLimVocoder",
    "MEL_SETTINGS",
    "MelSpectrogram",
    "griffin_lim",
    "load_audio",
    "mel_filterbank",
    "mel_spectrogram",
    "num_frames",
    "pcm_to_float",
    "resample",
    "save_audio",
    "stft_magnitude",
    "stft_min_samples",
]
