"""Infer suite: generator throughput (kHz of audio generated per second), real-time factor and peak
memory against mel length, through the `Vocoder` API (chunked, weight norm folded), fused vs eager.

Eager is BigVGAN's plain-PyTorch anti-aliased activation (`vocoder.bench.train.activations`).
"""

from __future__ import annotations

import gc
import time

import torch
from omegaconf import OmegaConf

from ..models import Generator
from ..vocoder import Vocoder
from .train import CONFIGS, activations


def run(model_name: str = "bigvgan_v2_24khz_100band_256x", frames: tuple[int, ...] = (256, 2048, 16384, 131072),
        precisions: tuple[str, ...] = ("fp32", "tf32", "bf16"), repeats: int = 3) -> list[dict]:
    config = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{model_name}.yaml"))
    rows = []
    for precision in precisions:
        torch.manual_seed(0)  # the same random weights for every precision
        voc = Vocoder(Generator.from_config(config), device="cuda", precision=precision)
        for fused in (True, False):
            for n in frames:
                mel = torch.randn(voc.num_mels, n, device="cuda")
                with activations(fused):
                    voc(mel)  # warm-up
                    torch.cuda.synchronize()
                    gc.collect()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                    times = []
                    for _ in range(repeats):
                        start = time.perf_counter()
                        voc(mel)
                        torch.cuda.synchronize()
                        times.append(time.perf_counter() - start)
                seconds = sorted(times)[len(times) // 2]
                samples = n * voc.hop_size
                rows.append({"model": model_name, "precision": precision, "activations": "fused" if fused else "eager",
                             "mel_frames": n, "audio_s": samples / voc.sampling_rate, "time_ms": seconds * 1e3,
                             "kHz": samples / seconds / 1e3, "realtime_x": samples / voc.sampling_rate / seconds,
                             "peak_MiB": (torch.cuda.max_memory_allocated() - base) / 2**20})
                del mel
    return rows
