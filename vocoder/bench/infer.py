"""Infer suite: generator throughput (kHz of audio generated per second), real-time factor and peak
memory against mel length, through the `Vocoder` API (chunked, weight norm folded), fused vs eager.

Eager is BigVGAN's plain-PyTorch anti-aliased activation (`Generator(impl="eager")`), with the same
random weights as the fused model.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..models import Generator
from ..vocoder import Vocoder
from .measure import peak_mib, release, synchronize
from .train import load_config


def run(model_name: str = "bigvgan_v2_24khz_100band_256x", frames: tuple[int, ...] = (256, 2048, 16384, 131072),
        precisions: tuple[str, ...] = ("fp32", "tf32", "bf16"), repeats: int = 3, device: str = "cuda") -> list[dict]:
    """One row per (precision, activations, mel length)."""
    config = load_config("model", model_name)
    rows = []
    for precision in precisions:
        for impl in ("fused", "eager"):
            torch.manual_seed(0)  # the same random weights for every precision and impl
            voc = Vocoder(Generator.from_config(config, impl=impl), device=device, precision=precision)
            for n in frames:
                mel = torch.randn(voc.num_mels, n, device=voc.device)
                voc(mel)  # warm-up
                times = []

                def timed():
                    for _ in range(repeats):
                        start = time.perf_counter()
                        voc(mel)
                        synchronize(voc.device)
                        times.append(time.perf_counter() - start)
                peak = peak_mib(timed, voc.device)
                seconds = sorted(times)[len(times) // 2]
                samples = n * voc.hop_size
                rows.append({"model": model_name, "precision": precision, "activations": impl,
                             "mel_frames": n, "audio_s": samples / voc.sampling_rate, "time_ms": seconds * 1e3,
                             "kHz": samples / seconds / 1e3, "realtime_x": samples / voc.sampling_rate / seconds,
                             "peak_MiB": peak})
                release(voc.device)
            used = voc.device
            del voc  # one model on the device at a time
            release(used)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Throughput and peak memory against mel length, a line per (precision, activations)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rate, ax_mem) = plt.subplots(1, 2, figsize=(11, 4))
    for series in dict.fromkeys((r["precision"], r["activations"]) for r in rows):
        pts = [r for r in rows if (r["precision"], r["activations"]) == series]
        label = " ".join(series)
        ax_rate.plot([r["mel_frames"] for r in pts], [r["kHz"] for r in pts], marker="o", label=label)
        if all(isinstance(r["peak_MiB"], float) for r in pts):
            ax_mem.plot([r["mel_frames"] for r in pts], [r["peak_MiB"] for r in pts], marker="o", label=label)
    for ax, label in ((ax_rate, "throughput (kHz of audio per second)"), (ax_mem, "peak memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("mel frames")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_rate.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
