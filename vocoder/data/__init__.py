"""Datasets: filelists and folders of audio, LibriTTS, random training segments, collate."""

from .dataset import AudioDataset, build_dataset, collate
from .files import AUDIO_SUFFIXES, check_audio_files, find_audio, read_filelist
from .libritts import SUBSETS as LIBRITTS_SUBSETS
from .libritts import libritts_files, libritts_utterances, write_filelist
from .sampler import EpochBatchSampler

__all__ = [
    "AUDIO_SUFFIXES", "AudioDataset", "EpochBatchSampler", "LIBRITTS_SUBSETS", "build_dataset", "check_audio_files",
    "collate", "find_audio", "libritts_files", "libritts_utterances", "read_filelist", "write_filelist",
]
