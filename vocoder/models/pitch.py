"""The pitch predictor of a generator with a pitch source: log-mel → F0 (log-spaced classes) and voicing.

A few convolutions at frame rate classify each frame into `bins` log-spaced F0 classes between
`f0_min` and `f0_max` and give one voicing logit; trained with cross-entropy against a pitch
tracker's F0 (`pitch_loss`), it lets the generator run on a mel alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


F0_GRID = 256  # decoded F0 values are multiples of 1 / F0_GRID Hz


class PitchPredictor(nn.Module):
    """(B, num_mels, frames) → logits (B, bins + 1, frames): `bins` F0 classes, then voicing."""

    def __init__(self, num_mels: int, channels: int = 64, layers: int = 3, kernel_size: int = 3,
                 bins: int = 96, f0_min: float = 50.0, f0_max: float = 600.0) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or channels < 1 or layers < 0 or bins < 2 or not 0 < f0_min < f0_max:
            raise ValueError(f"pitch predictor: need an odd kernel_size, channels >= 1, layers >= 0, bins >= 2 "
                             f"and 0 < f0_min < f0_max; got {kernel_size}, {channels}, {layers}, {bins}, "
                             f"{f0_min}, {f0_max}")
        self.bins, self.f0_min, self.f0_max = bins, float(f0_min), float(f0_max)
        self.kernel_size, self.layers = kernel_size, layers
        pad = kernel_size // 2
        body: list[nn.Module] = [nn.Conv1d(num_mels, channels, kernel_size, padding=pad)]
        for _ in range(layers):
            body += [nn.LeakyReLU(0.1), nn.Conv1d(channels, channels, kernel_size, padding=pad)]
        self.net = nn.Sequential(*body, nn.LeakyReLU(0.1), nn.Conv1d(channels, bins + 1, 1))

    def reach(self) -> int:
        """Frames on each side of a frame that its prediction reads."""
        return (self.layers + 1) * (self.kernel_size // 2)

    def forward(self, mel: Tensor) -> Tensor:
        """Logits, in the weights' dtype whatever autocast says: the F0 they give drives a phase
        that integrates over the whole signal, so 16-bit rounding here would drift the waveform."""
        with torch.autocast(mel.device.type, enabled=False):
            return self.net(mel.to(self.net[0].weight.dtype))

    @property
    def _log_step(self) -> float:
        return math.log2(self.f0_max / self.f0_min) / (self.bins - 1)

    def bin_of(self, f0: Tensor) -> Tensor:
        """F0 in Hz → the nearest class (clamped to the range), int64."""
        log_f0 = torch.log2(f0.clamp(self.f0_min, self.f0_max)) - math.log2(self.f0_min)
        return (log_f0 / self._log_step).round().long()

    def f0_of(self, bins: Tensor) -> Tensor:
        """Class index (any real number) → F0 in Hz."""
        return self.f0_min * 2 ** (bins * self._log_step)

    def decode(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Logits (B, bins + 1, frames) → F0 in Hz and voiced (0/1), (B, frames) each: the
        probability-weighted class of the five around the most likely one (sub-class precision),
        rounded to 1/F0_GRID Hz."""
        probs = logits[:, :self.bins].float().softmax(1)
        classes = torch.arange(self.bins, device=logits.device, dtype=probs.dtype)[None, :, None]
        near = probs * ((classes - probs.argmax(1, keepdim=True)).abs() <= 2)
        f0 = self.f0_of((near * classes).sum(1) / near.sum(1))
        # on a 1/256 Hz grid: the rounding differences of a window of another length (a streamed
        # piece) would otherwise change the F0 in its last bits, and the source's phase would drift
        f0 = torch.round(f0 * F0_GRID) / F0_GRID
        return f0, (logits[:, self.bins] > 0).to(f0.dtype)

    def predict(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        """Log-mel (B, num_mels, frames) → predicted F0 (Hz) and voiced (0/1), (B, frames) each."""
        return self.decode(self(mel))

    def loss(self, logits: Tensor, f0: Tensor, voiced: Tensor) -> Tensor:
        """Cross-entropy of the F0 classes over voiced frames + binary cross-entropy of the voicing;
        `f0` (Hz) and `voiced` (0/1) are (B, frames), the tracker's values for the mel's frames."""
        logits = logits.float()
        ce = F.cross_entropy(logits[:, :self.bins], self.bin_of(f0), reduction="none")
        voiced = voiced.to(ce.dtype)
        pitch = (ce * voiced).sum() / voiced.sum().clamp(min=1.0)
        return pitch + F.binary_cross_entropy_with_logits(logits[:, self.bins], voiced)
