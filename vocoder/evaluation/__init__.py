"""Quality metrics of BigVGAN's and Vocos' tables (PESQ, M-STFT, MCD, periodicity, V/UV F1, mel L1), envelope
correlation and silent-mel RMS as library functions: one set shared by training validation and the CLI."""

from .cepstral import mel_cepstral_distortion, mel_cepstrum
from .envelope import envelope_correlation, silent_mel_rms
from .files import FileScores, score_files
from .mel_distance import mel_l1, mel_l1_of_mels
from .pair import DEFAULT_MEL, HIGHER_IS_BETTER, METRICS, WORST, Scores, check_metrics, score_pair
from .pairing import Pair, PairingError, audio_files, pair_files
from .periodicity import periodicity_metrics, pitch_and_periodicity
from .pesq_score import PESQ_RATE, pesq_wb
from .report import coverage_lines, markdown_table, means, metrics_csv, summary_json
from .signals import UndefinedMetric
from .stft_distance import STFT_RESOLUTIONS, multi_resolution_stft_distance

__all__ = [
    "DEFAULT_MEL",
    "FileScores",
    "HIGHER_IS_BETTER",
    "METRICS",
    "PESQ_RATE",
    "Pair",
    "PairingError",
    "STFT_RESOLUTIONS",
    "Scores",
    "UndefinedMetric",
    "WORST",
    "audio_files",
    "envelope_correlation",
    "check_metrics",
    "coverage_lines",
    "markdown_table",
    "means",
    "mel_cepstral_distortion",
    "mel_cepstrum",
    "mel_l1",
    "mel_l1_of_mels",
    "metrics_csv",
    "multi_resolution_stft_distance",
    "pair_files",
    "periodicity_metrics",
    "pesq_wb",
    "pitch_and_periodicity",
    "score_files",
    "score_pair",
    "silent_mel_rms",
    "summary_json",
]
