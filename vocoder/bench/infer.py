"""Infer suite: generator throughput (kHz of audio generated per second), real-time factor and peak
memory against mel length, through the `Vocoder` API (chunked, weight norm folded), with the fused
activations, eager ones, and (CUDA, where it builds) NVIDIA BigVGAN's CUDA kernel.

Eager is BigVGAN's plain-PyTorch anti-aliased activation (`Generator(impl="eager")`); "nvidia" swaps
every anti-aliased activation for NVIDIA's inference kernel (`vocoder.bench.nvidia_anti_alias`); all
three with the same random weights. On CUDA each runs without and with CUDA graphs (`cuda_graphs`
column; the `Vocoder` default there is on). `stream_rows`: time per streamed piece and time to first
audio, eager against CUDA graphs.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import torch

from ..models import Generator
from ..vocoder import Vocoder
from .measure import peak_mib, release, synchronize
from .train import load_config

ACTIVATIONS = ("fused", "eager", "nvidia")


def default_activations(device: str) -> tuple[str, ...]:
    """fused and eager; NVIDIA's kernel too where it can be built."""
    from .nvidia_anti_alias import available

    return ACTIVATIONS if torch.device(device).type == "cuda" and available() else ACTIVATIONS[:2]


def run(model_name: str = "bigvgan_v2_24khz_100band_256x", frames: tuple[int, ...] = (256, 2048, 16384, 131072),
        precisions: tuple[str, ...] = ("fp32", "tf32", "bf16"), repeats: int = 3, device: str = "cuda",
        mel_name: str = "24khz_100band", kinds: tuple[str, ...] | None = None,
        graphs: tuple[bool, ...] | None = None) -> list[dict]:
    """One row per (precision, activations, CUDA graphs off/on, mel length); `kinds` from ACTIVATIONS
    (default: all that run here); `graphs` default: both on CUDA, off on the CPU."""
    from .nvidia_anti_alias import use_nvidia_kernel

    config, mel_config = load_config("model", model_name), load_config("mel", mel_name)
    kinds = default_activations(device) if kinds is None else kinds
    graphs = ((False, True) if torch.device(device).type == "cuda" else (False,)) if graphs is None else graphs
    rows = []
    for precision, impl, graphed in itertools.product(precisions, kinds, graphs):
        torch.manual_seed(0)  # the same random weights for every precision and impl
        generator = Generator.from_config(config, impl="eager" if impl == "eager" else "fused")
        voc = Vocoder(generator, mel_config, device=device, precision=precision, cuda_graphs=graphed)
        if impl == "nvidia":
            use_nvidia_kernel(voc.generator)
        for n in frames:
            mel = torch.randn(voc.num_mels, n, device=voc.device)
            for _ in range(2):  # warm-up; a window shape is captured on its second call
                voc(mel)
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
            rows.append({"model": model_name, "precision": precision, "activations": impl, "cuda_graphs": graphed,
                         "mel_frames": n, "audio_s": samples / voc.sampling_rate, "time_ms": seconds * 1e3,
                         "kHz": samples / seconds / 1e3, "realtime_x": samples / voc.sampling_rate / seconds,
                         "peak_MiB": peak})
            release(voc.device)
        used = voc.device
        del voc, generator  # one model on the device at a time
        release(used)
    return rows


def stream_rows(model_name: str = "bigvgan_v2_24khz_100band_256x", frames: int = 1024, piece_frames: int = 32,
                precisions: tuple[str, ...] = ("tf32",), device: str = "cuda", mel_name: str = "24khz_100band",
                graphs: tuple[bool, ...] | None = None, repeats: int = 3) -> list[dict]:
    """Streaming through `Vocoder.stream` with the whole mel at hand in chunks of `piece_frames`: the
    median time per piece (each piece synchronised, its audio final on the device) and the time to the
    first piece, for each precision with CUDA graphs off and on (after two warm-up streams, which
    capture the window shapes)."""
    config, mel_config = load_config("model", model_name), load_config("mel", mel_name)
    graphs = ((False, True) if torch.device(device).type == "cuda" else (False,)) if graphs is None else graphs
    rows = []
    for precision, graphed in itertools.product(precisions, graphs):
        torch.manual_seed(0)
        voc = Vocoder(Generator.from_config(config), mel_config, device=device, precision=precision,
                      cuda_graphs=graphed)
        mel = torch.randn(voc.num_mels, frames, device=voc.device)
        chunks = list(mel.split(piece_frames, dim=-1))
        firsts, pieces = [], []
        for run_index in range(2 + repeats):
            synchronize(voc.device)
            start = last = time.perf_counter()
            for i, _ in enumerate(voc.stream(chunks, piece_frames)):
                synchronize(voc.device)
                now = time.perf_counter()
                if run_index >= 2:
                    (firsts if i == 0 else pieces).append(now - last)
                last = now
        piece_s = sorted(pieces)[len(pieces) // 2] if pieces else float("nan")
        rows.append({"model": model_name, "precision": voc.precision, "cuda_graphs": graphed,
                     "piece_frames": piece_frames, "overlap_frames": voc.overlap_frames,
                     "piece_ms": piece_s * 1e3, "first_audio_ms": sorted(firsts)[len(firsts) // 2] * 1e3,
                     "piece_audio_ms": piece_frames * voc.hop_size / voc.sampling_rate * 1e3})
        used = voc.device
        del voc
        release(used)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Throughput and peak memory against mel length, a line per (precision, activations, graphs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rate, ax_mem) = plt.subplots(1, 2, figsize=(11, 4))
    for series in dict.fromkeys((r["precision"], r["activations"], r["cuda_graphs"]) for r in rows):
        pts = [r for r in rows if (r["precision"], r["activations"], r["cuda_graphs"]) == series]
        label = " ".join(series[:2]) + (" graphs" if series[2] else "")
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
