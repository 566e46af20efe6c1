"""Train suite: generator forward + backward at long segments — peak memory and step time.

Variants: fused activations (the default), eager activations (BigVGAN's plain-PyTorch Activation1d:
upsample → Snake → low-pass as separate autograd ops, each storing its input — what NVIDIA's code
trains with), and each of those with `activation_checkpointing` (recompute every AMP block in
backward, what users do today to fit long segments). Out-of-memory is recorded as a result.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..kernels import reference
from ..layers import AntiAliasActivation1d, SnakeBeta
from ..models import Generator
from .measure import guarded

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
VARIANTS = {  # name: (fused activations, activation checkpointing)
    "fused": (True, False),
    "eager": (False, False),
    "eager+ckpt": (False, True),
    "fused+ckpt": (True, True),
}


def _eager_forward(self: AntiAliasActivation1d, x: torch.Tensor) -> torch.Tensor:
    beta = self.act.beta if isinstance(self.act, SnakeBeta) else None
    return reference.anti_alias_activation(x, self.upsample.filter, self.downsample.lowpass.filter,
                                           self.act.alpha, beta, self.act.logscale, self.up_ratio,
                                           self.down_ratio)


@contextmanager
def activations(fused: bool) -> Iterator[None]:
    """Run AntiAliasActivation1d fused (as shipped) or as plain autograd ops (BigVGAN's eager path)."""
    if fused:
        yield
        return
    original = AntiAliasActivation1d.forward
    AntiAliasActivation1d.forward = _eager_forward
    try:
        yield
    finally:
        AntiAliasActivation1d.forward = original


def generator_step(model: Generator, mel: torch.Tensor, device: torch.device, repeats: int) -> tuple[float, float]:
    """(peak MiB above the model and input, median ms) of forward + backward of mean |output|."""
    def step():
        model(mel).abs().mean().backward()
        model.zero_grad(set_to_none=True)

    step()  # warm-up: kernels compile, allocator settles
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    gc.collect()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else float("nan")
    return peak, sorted(times)[len(times) // 2]


def run(model_name: str = "bigvgan_v2_24khz_100band_256x", segments: tuple[int, ...] = (8192, 32768, 65536, 131072, 262144),
        batch: int = 4, repeats: int = 3, device: str = "cuda", variants: tuple[str, ...] = tuple(VARIANTS)) -> list[dict]:
    """One row per (segment, variant)."""
    dev = torch.device(device)
    config = OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{model_name}.yaml"))
    hop = int(config["hop_size"])
    rows = []
    for variant in variants:
        fused, ckpt = VARIANTS[variant]
        model = Generator.from_config({**config, "activation_checkpointing": ckpt}).to(dev).train()
        for segment in segments:
            mel = torch.randn(batch, int(config["num_mels"]), segment // hop, device=dev)
            with activations(fused):
                result = guarded(lambda: generator_step(model, mel, dev, repeats))
            peak, ms = result if isinstance(result, tuple) else ("OOM", "OOM")
            rows.append({"model": model_name, "segment": segment, "batch": batch, "variant": variant,
                         "peak_GiB": peak / 1024 if isinstance(peak, float) else peak,
                         "step_ms": ms})
            del mel
        del model
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def plot(rows: list[dict], path: Path, gpu_memory_gib: float | None) -> None:
    """Peak memory and step time against segment length, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
    for variant in dict.fromkeys(r["variant"] for r in rows):
        pts = [r for r in rows if r["variant"] == variant and isinstance(r["peak_GiB"], float)]
        ax_mem.plot([r["segment"] for r in pts], [r["peak_GiB"] for r in pts], marker="o", label=variant)
        ax_time.plot([r["segment"] for r in pts], [r["step_ms"] for r in pts], marker="o", label=variant)
    if gpu_memory_gib:
        ax_mem.axhline(gpu_memory_gib, color="gray", linestyle="--", label="GPU memory")
    for ax, label in ((ax_mem, "peak memory (GiB)"), (ax_time, "generator fwd+bwd (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("segment length (samples), batch 4")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_mem.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
