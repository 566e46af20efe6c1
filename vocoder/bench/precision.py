"""Precision suite: what inference at each precision does to a trained model's audio. Per checkpoint and
precision, the output's SNR against the same model's fp32 output, and M-STFT and PESQ-wb against the
recordings it was resynthesised from (the demo corpus's held-out clips, resampled to the model's rate).

On CUDA an NVIDIA-shaped model (`--model`, random weights) adds SNR rows: its anti-aliased SnakeBeta
path at full size; against recordings a random model means nothing, so its metrics are left empty.
PESQ needs the `pesq` package; without it the column is empty and the report says why.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from ..audio import load_audio, resample
from ..checkpoint import load_model
from ..data.files import read_filelist
from ..evaluation.signals import UndefinedMetric
from ..evaluation.stft_distance import multi_resolution_stft_distance
from ..hub import resolve_checkpoint
from ..models import Generator
from ..vocoder import Vocoder
from .train import load_config

DEMO = Path(__file__).resolve().parents[1] / "data"
DEFAULT_CHECKPOINTS = (str(DEMO / "demo_pretrained.pt"),)
CPU_PRECISIONS, CUDA_PRECISIONS = ("fp32", "bf16"), ("fp32", "tf32", "bf16", "fp16")


def recordings(clips: int, seconds: float, sampling_rate: int = 24000) -> list[Tensor]:
    """The first `clips` held-out demo clips (vocoder/data/demo/val.txt), each cut to `seconds`."""
    files = read_filelist(DEMO / "demo" / "val.txt", DEMO / "demo")[:clips]
    return [load_audio(f, sampling_rate)[0][: int(seconds * sampling_rate)] for f in files]


def snr_db(reference: Tensor, other: Tensor) -> float:
    """10·log10(Σ reference² / Σ (other − reference)²); inf when equal."""
    noise = float(((other.double() - reference.double()) ** 2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float((reference.double() ** 2).sum()) / noise)


def _pesq():
    """`vocoder.evaluation.pesq_wb`, or None where the `pesq` package is not installed."""
    try:
        import pesq  # noqa: F401
    except ImportError:
        return None
    from ..evaluation.pesq_score import pesq_wb

    return pesq_wb


def _scores(metric, references: list[Tensor], outputs: list[Tensor]) -> list[float]:
    """`metric(reference, output)` for each pair where it is defined."""
    values = []
    for r, o in zip(references, outputs):
        try:
            values.append(metric(r, o))
        except UndefinedMetric:
            pass
    return values


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def score(name: str, generator: Generator, mel: dict, precisions: tuple[str, ...], device: str,
          wavs: list[Tensor], wav_rate: int, against_recordings: bool) -> list[dict]:
    """One row per precision for one model: SNR and max |difference| against its fp32 audio, and (when
    `against_recordings`) M-STFT and PESQ-wb against the recordings at the model's rate."""
    pesq_wb = _pesq() if against_recordings else None
    rows, fp32 = [], None
    for precision in ("fp32", *[p for p in precisions if p != "fp32"]):
        voc = Vocoder(generator, mel, device=device, precision=precision)
        outputs = [voc.resynthesize(w.to(voc.device), wav_rate).float().cpu() for w in wavs]
        if fp32 is None:
            fp32 = outputs
        joined, joined_fp32 = torch.cat(outputs), torch.cat(fp32)
        row = {"model": name, "precision": precision, "snr_db_vs_fp32": snr_db(joined_fp32, joined),
               "max_abs_diff": float((joined - joined_fp32).abs().max())}
        finite = all(bool(torch.isfinite(o).all()) for o in outputs)
        if against_recordings:
            references = [resample(w, wav_rate, voc.sampling_rate)[: len(o)] for w, o in zip(wavs, outputs)]
            row["m_stft"] = _mean(_scores(multi_resolution_stft_distance, references, outputs if finite else []))
            row["pesq"] = _mean(_scores(lambda r, o: pesq_wb(r, o, voc.sampling_rate), references,
                                        outputs if finite and pesq_wb else []))
        if not finite:
            row["note"] = "non-finite samples in the output"
        rows.append(row)
    return [r for r in rows if r["precision"] in precisions]


def run(checkpoints: tuple[str, ...] = DEFAULT_CHECKPOINTS, precisions: tuple[str, ...] | None = None,
        device: str = "cuda", clips: int = 10, seconds: float = 3.0,
        nvidia_model: str | None = "bigvgan_v2_24khz_100band_256x",
        nvidia_mel: str = "24khz_100band") -> tuple[list[dict], list[str]]:
    """(rows, notes): every checkpoint (path or hub id) at every precision (default: fp32, bf16 on the
    CPU; fp32, tf32, bf16, fp16 on CUDA), then on CUDA the NVIDIA-shaped `nvidia_model` (SNR only)."""
    cuda = torch.device(device).type == "cuda"
    precisions = precisions or (CUDA_PRECISIONS if cuda else CPU_PRECISIONS)
    wavs = recordings(clips, seconds)
    notes = [f"recordings: the first {len(wavs)} held-out demo clips (24 kHz synthetic speech, "
             f"{seconds:g} s each at most), resampled to each model's rate"]
    if _pesq() is None:
        notes.append("pesq: the `pesq` package is not installed here; the column is empty")
    rows = []
    for spec in checkpoints:
        generator, mel = load_model(resolve_checkpoint(spec), "cpu")
        rows += score(Path(spec).name or spec, generator, mel, precisions, device, wavs, 24000, True)
    if cuda and nvidia_model:
        torch.manual_seed(0)
        generator = Generator.from_config(load_config("model", nvidia_model))
        mel = load_config("mel", nvidia_mel)
        rows += score(f"{nvidia_model} (random weights)", generator, mel, precisions, device, wavs, 24000, False)
        notes.append(f"{nvidia_model}: random weights, NVIDIA's shape; only its SNR against fp32 means something")
    return rows, notes
