"""Mel L1: mean absolute difference of this package's log-mel spectrograms (BigVGAN's validation 'mel error')."""

from __future__ import annotations

from torch import Tensor, nn

from .signals import UndefinedMetric


def mel_l1_of_mels(mel_reference: Tensor, mel_generated: Tensor) -> float:
    """Mean |mel_reference − mel_generated| over bands and frames, both cropped to the shorter in frames."""
    frames = min(mel_reference.shape[-1], mel_generated.shape[-1])
    return float((mel_reference[..., :frames] - mel_generated[..., :frames]).abs().mean())


def mel_l1(reference: Tensor, generated: Tensor, mel: nn.Module) -> float:
    """Mel L1 of two waveforms under `mel` (a `vocoder.audio.MelSpectrogram`; its rate is theirs)."""
    try:
        return mel_l1_of_mels(mel(reference), mel(generated))
    except ValueError as e:  # shorter than one STFT frame
        raise UndefinedMetric(f"mel L1 is undefined: {e}") from e
