"""Audio: BigVGAN-compatible log-mel spectrogram, its Griffin-Lim inversion, constant-Q transform, audio file I/O, resampling."""

from .cqt import ConstantQTransform
from .griffin_lim import GRIFFIN_LIM_ITERATIONS, GriffinLimVocoder, griffin_lim
from .io import AudioError, AudioInfo, load_audio, pcm_to_float, resample, save_audio
from .mel import SETTINGS as MEL_SETTINGS
from .mel import MelSpectrogram, mel_filterbank, mel_spectrogram, num_frames, stft_magnitude, stft_min_samples

__all__ = [
    "AudioError",
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
