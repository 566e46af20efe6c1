"""Scoring file pairs: each pair loaded at the comparison rate, scored, reported as it goes; a bad pair is
reported by name and the others go on."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import torch

from ..audio import AudioInfo, MelSpectrogram, load_audio
from .pair import METRICS, Scores, score_pair
from .pairing import Pair


@dataclass
class FileScores:
    """What `score_files` found: names and metric rows of the scored pairs, notes, failures by name."""

    names: list[str] = field(default_factory=list)
    rows: list[Scores] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    seconds: float = 0.0


def _load_notes(what: str, info: AudioInfo) -> list[str]:
    notes = []
    if info.mixed_down:
        notes.append(f"{what} mixed down from {info.channels} channels to mono")
    if info.resampled:
        notes.append(f"{what} resampled from {info.original_sampling_rate} Hz to {info.sampling_rate} Hz")
    return notes


def _shown(scores: Scores) -> str:
    return ", ".join(f"{k} {v:.3f}" if math.isfinite(v) else f"{k} —" for k, v in scores.items())


def score_files(pairs: Sequence[Pair], mel: MelSpectrogram, metrics: Sequence[str] = METRICS,
                pitch_model: str = "tiny", device: str | torch.device = "cpu",
                out: TextIO | None = None, err: TextIO | None = None) -> FileScores:
    """Score every pair at `mel.sampling_rate` (files at another rate are resampled, stereo mixed
    down, and a note says so); progress lines go to `out`, failures to `err`."""
    out, err = out or sys.stdout, err or sys.stderr
    result = FileScores()
    rate = int(mel.sampling_rate)
    width = len(str(len(pairs)))
    start = time.perf_counter()
    for index, pair in enumerate(pairs):
        tag = f"[{index + 1:>{width}}/{len(pairs)}]"
        if pair.error:
            result.failed[pair.name] = pair.error
            print(f"{tag} FAILED {pair.name}: {pair.error}", file=err, flush=True)
            continue
        began = time.perf_counter()
        try:
            reference, ref_info = load_audio(pair.reference, rate)
            generated, gen_info = load_audio(pair.generated, rate)
            scores = score_pair(reference, generated, rate, mel=mel, metrics=metrics, pitch_model=pitch_model,
                                device=device)
        except (OSError, ValueError, RuntimeError) as e:  # unreadable, empty, NaN, ...: this pair only
            result.failed[pair.name] = str(e).strip() or type(e).__name__
            print(f"{tag} FAILED {pair.name}: {result.failed[pair.name]}", file=err, flush=True)
            continue
        notes = _load_notes("reference", ref_info) + _load_notes("generated", gen_info) + scores.notes
        result.names.append(pair.name)
        result.rows.append(scores)
        result.audio_seconds += reference.shape[-1] / rate
        if notes:
            result.notes[pair.name] = notes
        shown = "".join(f"; {n}" for n in notes)
        print(f"{tag} {pair.name}: {_shown(scores)} ({time.perf_counter() - began:.1f} s{shown})", file=out, flush=True)
    result.seconds = time.perf_counter() - start
    return result
