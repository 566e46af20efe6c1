"""Train suite: peak memory and step time at long segments, for one generator forward + backward and
for one full GAN step (discriminator update + generator update with AdamW, `vocoder.training.step`).

Variants: fused activations (as shipped); eager activations (`Generator(impl="eager")`: BigVGAN's
plain-PyTorch Activation1d, upsample → Snake → low-pass as separate autograd ops, each storing its
input, what NVIDIA's code trains with); and each with `model.activation_checkpointing=true` (every AMP block recomputed in
backward: what users do today to fit long segments). Out-of-memory is recorded as a result.

peak_GiB is everything allocated at the step's peak (weights, gradients, optimiser state, inputs and
what autograd keeps). The saved_* columns split what autograd keeps at its peak by tensor kind
(`vocoder.bench.saved`); activation checkpointing's block inputs are not among them.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.nn.utils.parametrize import ParametrizationList

from ..audio import MelSpectrogram
from ..layers import AntiAliasActivation1d, Snake, SnakeBeta
from ..models import Generator, MultiScaleMelSpectrogramLoss, build_discriminators
from ..models.discriminators import (MultiPeriodDiscriminator, MultiResolutionDiscriminator,
                                     MultiScaleSubbandCQTDiscriminator)
from ..training.step import GanStep
from .measure import guarded, release, synchronize
from .saved import SavedTensorLedger

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STEPS = ("generator", "gan")
VARIANTS = {  # name: (how the activations run, activation checkpointing)
    "fused": ("fused", False),
    "eager": ("eager", False),
    "eager+ckpt": ("eager", True),
    "fused+ckpt": ("fused", True),
}
KINDS = ("activations", "conv_inputs", "weight_norm", "discriminators", "mel_loss", "other")
DISCRIMINATORS = (MultiPeriodDiscriminator, MultiResolutionDiscriminator, MultiScaleSubbandCQTDiscriminator)


def load_config(group: str, name: str) -> dict:
    """A `vocoder/configs/<group>/<name>.yaml` as a plain dict."""
    path = CONFIGS / group / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
        raise ValueError(f"no {group} config {name!r} (vocoder/configs/{group}/ has {', '.join(known)})")
    return OmegaConf.to_container(OmegaConf.load(path))


def tensor_kind(stack: tuple[nn.Module, ...], tensor: Tensor) -> str:
    """Which part of the model a saved tensor belongs to, from the modules running when it was saved."""
    if any(isinstance(m, DISCRIMINATORS) for m in stack):
        return "discriminators"
    if any(isinstance(m, (MultiScaleMelSpectrogramLoss, MelSpectrogram)) for m in stack):
        return "mel_loss"
    for m in reversed(stack):
        if isinstance(m, (AntiAliasActivation1d, Snake, SnakeBeta)):
            return "activations"
        if isinstance(m, ParametrizationList):
            return "weight_norm"
        if isinstance(m, nn.modules.conv._ConvNd):
            weight = m.parametrizations.weight.original1 if hasattr(m, "parametrizations") else m.weight
            # a conv keeps its input and, under weight norm, the weight computed for this call
            return "weight_norm" if tensor.shape == weight.shape else "conv_inputs"
    return "other"


def measure(step: Callable[[], object], device: torch.device, repeats: int) -> tuple[float | None, float]:
    """(peak GiB allocated during the timed steps, or None on the CPU; median ms), after a warm-up step."""
    step()  # warm-up: kernels compile, the allocator settles, optimiser state exists
    gc.collect()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return peak, sorted(times)[len(times) // 2]


def saved_by_kind(step: Callable[[], object], resident: list[Tensor]) -> dict[str, float]:
    """GiB autograd keeps at its peak during one step: the total and by kind."""
    with SavedTensorLedger(tensor_kind, resident=resident) as ledger:
        step()
    split = {f"saved_{k}": ledger.peak_by_kind.get(k, 0) / 2**30 for k in KINDS}
    return {"saved_GiB": ledger.peak_bytes / 2**30, **split}


class Case:
    """The models of one variant and a way to run one step of `kind` on a segment length."""

    def __init__(self, model: dict, discriminator: dict, checkpointing: bool, device: torch.device,
                 impl: str = "fused") -> None:
        torch.manual_seed(0)
        self.model, self.device = model, device
        self.generator = Generator.from_config({**model, "activation_checkpointing": checkpointing},
                                               impl=impl).to(device)
        self.gan: GanStep | None = None
        self.discriminator = discriminator

    def gan_step(self) -> GanStep:
        if self.gan is None:
            rate = int(self.model["sampling_rate"])
            discriminators = {k: d.to(self.device) for k, d in build_discriminators(self.discriminator, rate).items()}
            self.gan = GanStep(self.generator, discriminators, MelSpectrogram.from_config(self.model).to(self.device),
                               MultiScaleMelSpectrogramLoss(sampling_rate=rate).to(self.device))
        return self.gan

    def step(self, kind: str, batch: int, segment: int) -> tuple[Callable[[], object], list[Tensor]]:
        """(one step on fresh random input, the parameters it trains)."""
        gen = torch.Generator(device=self.device).manual_seed(segment)
        if kind == "generator":
            frames = segment // int(self.model["hop_size"])
            mel = torch.randn(batch, int(self.model["num_mels"]), frames, device=self.device, generator=gen)

            def generator_step():
                self.generator(mel).abs().mean().backward()
                self.generator.zero_grad(set_to_none=True)
            return generator_step, list(self.generator.parameters())
        gan = self.gan_step()
        wav = (0.3 * torch.randn(batch, 1, segment, device=self.device, generator=gen)).clamp_(-1, 1)
        return (lambda: gan(wav)), [*self.generator.parameters(), *gan.discriminators.parameters()]


def run(model_name: str = "bigvgan_v2_24khz_100band_256x", segments: tuple[int, ...] = (8192, 32768, 65536, 131072, 262144),
        batch: int = 4, repeats: int = 3, device: str = "cuda", variants: tuple[str, ...] = tuple(VARIANTS),
        steps: tuple[str, ...] = STEPS, discriminator: str = "bigvgan_v1") -> list[dict]:
    """One row per (step, variant, segment)."""
    dev = torch.device(device)
    model, disc = load_config("model", model_name), load_config("discriminator", discriminator)
    return [row for kind in steps for variant in variants
            for row in variant_rows(model_name, model, discriminator, disc, kind, variant, segments, batch, repeats, dev)]


def variant_rows(model_name: str, model: dict, disc_name: str, disc: dict, kind: str, variant: str,
                 segments: tuple[int, ...], batch: int, repeats: int, device: torch.device) -> list[dict]:
    """The rows of one step kind and variant, shortest segment first, on one set of models."""
    impl, ckpt = VARIANTS[variant]
    case = Case(model, disc, ckpt, device, impl)
    rows = []
    for segment in segments:
        def measured() -> dict:
            step, params = case.step(kind, batch, segment)
            peak, ms = measure(step, device, repeats)
            return {"peak_GiB": peak, "step_ms": ms, **saved_by_kind(step, params)}

        result = guarded(measured)
        rows.append({"model": model_name, "step": kind if kind == "generator" else f"gan ({disc_name})",
                     "segment": segment, "batch": batch, "variant": variant,
                     **(result if isinstance(result, dict) else {"peak_GiB": "OOM", "step_ms": "OOM"})})
        release(device)
    return rows


def plot(rows: list[dict], path: Path, gpu_memory_gib: float | None) -> None:
    """Peak memory and step time against segment length: a panel pair per step, a line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = list(dict.fromkeys(r["step"] for r in rows))
    fig, axes = plt.subplots(len(steps), 2, figsize=(11, 4 * len(steps)), squeeze=False)
    for (ax_mem, ax_time), step in zip(axes, steps):
        mine = [r for r in rows if r["step"] == step]
        memory_key = "peak_GiB" if any(isinstance(r["peak_GiB"], float) for r in mine) else "saved_GiB"
        for variant in dict.fromkeys(r["variant"] for r in mine):
            pts = [r for r in mine if r["variant"] == variant and isinstance(r["step_ms"], float)]
            ax_mem.plot([r["segment"] for r in pts], [r[memory_key] for r in pts], marker="o", label=variant)
            ax_time.plot([r["segment"] for r in pts], [r["step_ms"] for r in pts], marker="o", label=variant)
        if gpu_memory_gib and memory_key == "peak_GiB":
            ax_mem.axhline(gpu_memory_gib, color="gray", linestyle="--", label="GPU memory")
        labels = {"peak_GiB": "peak memory (GiB)", "saved_GiB": "saved for backward (GiB)"}
        for ax, label in ((ax_mem, labels[memory_key]), (ax_time, "step time (ms)")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel(f"segment length (samples), batch {mine[0]['batch']}")
            ax.set_ylabel(label)
            ax.set_title(f"{step} step")
            ax.grid(alpha=0.3)
        ax_mem.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
