"""The generator's optional pitch conditioning (not in BigVGAN): a harmonic source driven by F0, added
after every upsampling stage, as NSF-HiFiGAN does.

Why: a small generator trained briefly locks its harmonics to the mel's frame rate (a buzz at
multiples of sampling_rate / hop); a source of sines at the voice's F0 makes the harmonics follow
the pitch. The component owns all of it: the pitch predictor (F0 from the mel, so inference needs
the mel alone), the source, its per-stage downsamplers and the predictor's training loss. A generator
without `pitch_source` settings has no such component and none of its code runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .pitch import PitchPredictor
from .source import HarmonicSource, advance, rewind, running_phase, source_downsampler

# what a training batch must hold for this conditioning (vocoder.data.pitch_tracks makes them)
TARGETS = ("f0", "voiced")


@dataclass(frozen=True)
class SignalPitch:
    """One signal's F0 (Hz) and voicing (0/1) per frame, the source's phase (cycles) at each frame's
    first sample, and the index of its first frame in the longer signal it may be a window of."""

    f0: Tensor
    voiced: Tensor
    frame_phases: Tensor
    first_frame: int


@dataclass(frozen=True)
class PitchCarry:
    """What a vocoded window of a stream hands the next: the source's phase (cycles) at the first
    sample of the first frame it did not keep."""

    phase: Tensor


class PitchConditioning(nn.Module):
    """Mel → the excitation each upsampling stage adds; the predictor's loss against F0 targets.

    `settings`: complete `vocoder.models.source.PITCH_SOURCE_DEFAULTS`-shaped settings;
    `channels[i]` and `strides[i]`: stage i's channels and output samples per stage sample.
    """

    def __init__(self, num_mels: int, hop: int, channels: Sequence[int], strides: Sequence[int],
                 settings: Mapping[str, Any]) -> None:
        super().__init__()
        self.predictor = PitchPredictor(
            num_mels, settings["predictor_channels"], settings["predictor_layers"], settings["predictor_kernel_size"],
            settings["bins"], settings["f0_min"], settings["f0_max"])
        self.source = HarmonicSource(settings["sampling_rate"], hop, settings["harmonics"],
                                     settings["sine_amplitude"], settings["voiced_noise"])
        self.downs = nn.ModuleList(source_downsampler(c, s) for c, s in zip(channels, strides))
        self.hop = hop

    def reach(self) -> int:
        """Mel frames on each side of a frame that its excitation reads: the predictor's, and the
        frame that interpolation between frame centres reaches."""
        return self.predictor.reach() + 1

    def forward(self, mel: Tensor, condition: Mapping[str, Tensor] | None = None) -> list[Tensor]:
        """The excitation of each stage, (B, channels[i], frames·hop / strides[i]). `condition` (all
        optional): 'f0' and 'voiced' (B, frames) drive the source instead of the predicted ones;
        'phase' and 'first_sample' (B,) place a window in a longer signal (`HarmonicSource.forward`)."""
        condition = condition or {}
        if "f0" in condition:
            f0, voiced = condition["f0"], condition.get("voiced")
            expected = (mel.shape[0], mel.shape[2])
            if voiced is None or f0.shape != expected or voiced.shape != f0.shape:
                raise ValueError(f"f0 and voiced must both be (batch, frames) = {expected}, got {tuple(f0.shape)} "
                                 f"and {None if voiced is None else tuple(voiced.shape)}")
        else:
            f0, voiced = self.predictor.predict(mel)
        excitation = self.source(f0, voiced, condition.get("phase"), condition.get("first_sample"))
        return [down(excitation) for down in self.downs]

    def losses(self, mel: Tensor, targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The predictor's loss against the batch's F0 targets (teacher forcing in training)."""
        return {"pitch": self.predictor.loss(self.predictor(mel), targets["f0"], targets["voiced"])}

    def check_targets(self, targets: Mapping[str, Tensor] | None) -> None:
        """A ValueError when a training batch lacks the F0 targets this conditioning learns from."""
        if targets is None or any(k not in targets for k in TARGETS):
            raise ValueError("the generator has a pitch source (model.pitch_source): each step needs the batch's F0 "
                             "targets (f0 and voiced; vocoder.data.pitch_tracks makes them)")

    # ---------------------------------------------------------------- placing windows of a long signal

    def signal(self, f0: Tensor, voiced: Tensor, first_frame: int = 0, keep_start: int = 0,
               carry: PitchCarry | None = None) -> SignalPitch:
        """The pitch of a signal (or of a window of one starting at frame `first_frame`) whose source
        phase at frame `keep_start` is `carry`'s (0 without one)."""
        steps = self.source.sample_steps(f0[None])[0]
        phase = 0.0 if carry is None else carry.phase
        start = rewind(phase, steps[:keep_start * self.hop])
        return SignalPitch(f0, voiced, running_phase(start, steps)[::self.hop], first_frame)

    def carry(self, pitch: SignalPitch, keep_start: int, keep_stop: int,
              previous: PitchCarry | None = None) -> PitchCarry:
        """The carry at frame `keep_stop` once frames [keep_start, keep_stop) of `pitch` are vocoded,
        from `previous`, the carry at frame `keep_start` (0 without one)."""
        steps = self.source.sample_steps(pitch.f0[None])[0]
        phase = 0.0 if previous is None else previous.phase
        return PitchCarry(advance(phase, steps[keep_start * self.hop:keep_stop * self.hop]))

    def window(self, pitch: SignalPitch, start: int, stop: int, keep_start: int) -> dict[str, Tensor]:
        """The condition of frames [start, stop) of the signal, placed so that from frame `keep_start`
        on its source runs as the whole signal's does (a window's own phase steps differ from the
        signal's within a frame of its edges)."""
        steps = self.source.sample_steps(pitch.f0[None, start:stop])[0]
        phase = rewind(pitch.frame_phases[keep_start], steps[:(keep_start - start) * self.hop])
        first_sample = torch.tensor((pitch.first_frame + start) * self.hop, device=pitch.f0.device)
        return {"f0": pitch.f0[start:stop], "voiced": pitch.voiced[start:stop], "phase": phase,
                "first_sample": first_sample}


def stage_strides(upsample_rates: Sequence[int]) -> list[int]:
    """Output samples per sample of each upsampling stage."""
    return [math.prod(int(r) for r in upsample_rates[i + 1:]) for i in range(len(upsample_rates))]
