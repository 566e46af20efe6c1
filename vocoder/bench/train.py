"""Train suite: peak memory and step time at long segments, for one generator forward + backward and
for one full GAN step (discriminator update + generator update with AdamW, `vocoder.training.step`).

A variant is a base and options joined by '+': base `fused` (the activations as shipped) or `eager`
(`Generator(impl="eager")`: BigVGAN's plain-PyTorch Activation1d, upsample → Snake → low-pass as
separate autograd ops, each storing its input, what NVIDIA's code trains with); options `ckpt`
(`train.activation_checkpointing=true`: every AMP block recomputed in backward, what users do today
to fit long segments), `dckpt` (GAN step: every sub-discriminator recomputed in backward,
`train.discriminator_checkpointing`), `compile` / `cudagraphs` (the generator through torch.compile,
default mode / "reduce-overhead", `train.compile`), `wn-each-use` (generator step: weight norm
computed at every use instead of once per step, the behaviour before `weight_norm_once`) and
`split-d` (GAN step: the discriminators' backward in two passes, real then generated audio,
`split_discriminator_backward`) and `cl` (GAN step: the discriminators in channels-last memory format,
`GanStep(channels_last=True)`).
Variant `nvidia` is NVIDIA's own step (`vocoder.bench.nvidia_train`: the `bigvgan` package's
generator, discriminators, losses and its train.py loop body, from the same configs; skipped with
a note where `bigvgan` is not installed). Out-of-memory is recorded as a result. The GAN step runs at precision tf32 (float32, cuDNN
convolutions in TF32: PyTorch's default, as NVIDIA's training uses).

peak_GiB is everything allocated at the step's peak (weights, gradients, optimiser state, inputs and
what autograd keeps). The saved_* columns split what autograd keeps at its peak by tensor kind
(`vocoder.bench.saved`; not for compiled variants, whose graphs autograd's hooks do not see);
activation checkpointing's block inputs are not among them. With `profile`, one more step runs under
the torch profiler: kernel_ms is the sum of its GPU kernel (and copy) times, kernels their number,
and step_vs_kernels the median step time over kernel_ms (1.0: the GPU never waits for the CPU).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch.nn.utils.parametrize import ParametrizationList

from ..audio import MelSpectrogram
from ..layers import AntiAliasActivation1d, Snake, SnakeBeta
from ..layers.weight_norm import weight_norm_once
from ..models import Generator, MultiScaleMelSpectrogramLoss, build_discriminators
from ..models.generator import check_mel_settings
from ..models.discriminators import (DiscriminatorCQT, DiscriminatorP, DiscriminatorR, MultiPeriodDiscriminator,
                                     MultiResolutionDiscriminator, MultiScaleSubbandCQTDiscriminator)
from ..training.step import GanStep
from .measure import guarded, release, synchronize
from .saved import SavedTensorLedger

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STEPS = ("generator", "gan")
VARIANTS = ("fused", "eager", "eager+ckpt", "fused+ckpt")  # the default set
BASES = ("fused", "eager", "nvidia")
OPTIONS = ("ckpt", "dckpt", "compile", "cudagraphs", "wn-each-use", "split-d", "cl")
KINDS = ("activations", "conv_inputs", "weight_norm", "discriminators", "mel_loss", "other")
DISCRIMINATORS = (MultiPeriodDiscriminator, MultiResolutionDiscriminator, MultiScaleSubbandCQTDiscriminator,
                  DiscriminatorP, DiscriminatorR, DiscriminatorCQT)  # the generator update calls the sub-discriminators


@dataclass(frozen=True)
class Variant:
    """What one variant name switches on."""

    fused: bool
    checkpointing: bool = False
    discriminator_checkpointing: bool = False
    compile: str | None = None  # a torch.compile mode for the generator
    weight_norm_once: bool = True
    nvidia: bool = False  # NVIDIA's own step (vocoder.bench.nvidia_train), no options
    split_discriminator_backward: bool = False
    channels_last: bool = False

    @classmethod
    def parse(cls, name: str) -> "Variant":
        base, *options = name.split("+")
        unknown = [o for o in options if o not in OPTIONS]
        if base not in BASES or unknown or len(set(options)) != len(options):
            raise ValueError(f"variant {name!r}: expected nvidia, or fused or eager followed by +options "
                             f"from {', '.join(OPTIONS)}")
        if base == "nvidia":
            if options:
                raise ValueError(f"variant {name!r}: nvidia (NVIDIA's own step) takes no options")
            return cls(False, nvidia=True)
        if "compile" in options and "cudagraphs" in options:
            raise ValueError(f"variant {name!r}: compile and cudagraphs are two modes of one option")
        mode = "default" if "compile" in options else "reduce-overhead" if "cudagraphs" in options else None
        return cls(base == "fused", "ckpt" in options, "dckpt" in options, mode, "wn-each-use" not in options,
                   split_discriminator_backward="split-d" in options, channels_last="cl" in options)


def load_config(group: str, name: str) -> dict:
    """A `vocoder/configs/<group>/<name>.yaml` as a plain dict: the file's own keys (its Hydra
    `defaults` list is left out; `from_config` fills in what a file leaves to the defaults)."""
    path = CONFIGS / group / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))
        raise ValueError(f"no {group} config {name!r} (vocoder/configs/{group}/ has {', '.join(known)})")
    config = OmegaConf.to_container(OmegaConf.load(path))
    config.pop("defaults", None)
    return config


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


def measure(step: Callable[[], object], device: torch.device, repeats: int,
            warmups: int = 1) -> tuple[float | None, float]:
    """(peak GiB allocated during the timed steps, or None on the CPU; median ms), after warm-up steps."""
    for _ in range(warmups):  # kernels compile, the allocator settles, optimiser state exists
        step()
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


def kernel_time(step: Callable[[], object], device: torch.device) -> dict[str, float | int | None]:
    """One step under the torch profiler: the sum of its GPU kernel (and copy) times in ms, and their
    number (None on the CPU)."""
    if device.type != "cuda":
        return {"kernel_ms": None, "kernels": None}
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        synchronize(device)
    gpu = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    return {"kernel_ms": sum(e.time_range.elapsed_us() for e in gpu) / 1e3, "kernels": len(gpu)}


def saved_by_kind(step: Callable[[], object], resident: list[Tensor]) -> dict[str, float]:
    """GiB autograd keeps at its peak during one step: the total and by kind."""
    with SavedTensorLedger(tensor_kind, resident=resident) as ledger:
        step()
    split = {f"saved_{k}": ledger.peak_by_kind.get(k, 0) / 2**30 for k in KINDS}
    return {"saved_GiB": ledger.peak_bytes / 2**30, **split}


class Case:
    """The models of one variant and a way to run one step of `kind` on a segment length."""

    def __init__(self, model: dict, mel: dict, discriminator: dict, variant: Variant, device: torch.device) -> None:
        check_mel_settings(model, mel)
        torch.manual_seed(0)
        self.device, self.variant = device, variant
        self.nvidia = None
        if variant.nvidia:
            from .nvidia_train import NvidiaTrainStep

            self.nvidia = NvidiaTrainStep(model, mel, discriminator, device)
            self.mel = MelSpectrogram.from_config(mel).to(device)
            return
        self.generator = Generator.from_config(model, impl="fused" if variant.fused else "eager",
                                               activation_checkpointing=variant.checkpointing).to(device)
        self.generator_train = self.generator
        if variant.compile is not None:
            self.generator_train = torch.compile(self.generator, mode=variant.compile, dynamic=False)
        self.mel = MelSpectrogram.from_config(mel).to(device)
        self.gan: GanStep | None = None
        self.discriminator = discriminator

    def gan_step(self) -> GanStep:
        if self.gan is None:
            rate = self.mel.sampling_rate
            built = build_discriminators(self.discriminator, rate, self.variant.discriminator_checkpointing)
            discriminators = {k: d.to(self.device) for k, d in built.items()}
            self.gan = GanStep(self.generator, discriminators, self.mel,
                               MultiScaleMelSpectrogramLoss(sampling_rate=rate).to(self.device), precision="tf32",
                               compile=self.variant.compile,
                               split_discriminator_backward=self.variant.split_discriminator_backward,
                               channels_last=self.variant.channels_last)
        return self.gan

    def step(self, kind: str, batch: int, segment: int) -> tuple[Callable[[], object], list[Tensor]]:
        """(one step on fresh random input, the parameters it trains)."""
        gen = torch.Generator(device=self.device).manual_seed(segment)
        if self.nvidia is not None:
            if kind == "generator":
                mel = torch.randn(batch, self.mel.num_mels, segment // self.mel.hop_size, device=self.device, generator=gen)
                return self.nvidia.generator_step(mel), list(self.nvidia.generator.parameters())
            wav = (0.3 * torch.randn(batch, 1, segment, device=self.device, generator=gen)).clamp_(-1, 1)
            return (lambda: self.nvidia(wav)), self.nvidia.parameters()
        if kind == "generator":
            frames = segment // self.mel.hop_size
            mel = torch.randn(batch, self.mel.num_mels, frames, device=self.device, generator=gen)
            once = self.variant.weight_norm_once and self.variant.compile is None

            def generator_step():
                with weight_norm_once(self.generator) if once else nullcontext():
                    self.generator_train(mel).abs().mean().backward()
                self.generator.zero_grad(set_to_none=True)
            return generator_step, list(self.generator.parameters())
        gan = self.gan_step()
        wav = (0.3 * torch.randn(batch, 1, segment, device=self.device, generator=gen)).clamp_(-1, 1)
        targets = {}
        if self.generator.targets:  # a model with a pitch source trains on F0 targets: a steady 150 Hz, voiced
            frames = segment // self.mel.hop_size
            targets = {"f0": torch.full((batch, frames), 150.0, device=self.device),
                       "voiced": torch.ones(batch, frames, device=self.device)}
        return (lambda: gan(wav, targets=targets)), [*self.generator.parameters(), *gan.discriminators.parameters()]


def run(model_name: str = "bigvgan_v2_24khz_100band_256x", segments: tuple[int, ...] = (8192, 32768, 65536, 131072, 262144),
        batch: int = 4, repeats: int = 3, device: str = "cuda", variants: tuple[str, ...] = VARIANTS,
        steps: tuple[str, ...] = STEPS, discriminator: str = "bigvgan_v1", mel_name: str = "24khz_100band",
        profile: bool = False) -> list[dict]:
    """One row per (step, variant, segment)."""
    dev = torch.device(device)
    model, mel = load_config("model", model_name), load_config("mel", mel_name)
    disc = load_config("discriminator", discriminator)
    return [row for kind in steps for variant in variants
            for row in variant_rows(model_name, model, mel, discriminator, disc, kind, variant, segments, batch,
                                    repeats, dev, profile)]


def variant_rows(model_name: str, model: dict, mel: dict, disc_name: str, disc: dict, kind: str, variant: str,
                 segments: tuple[int, ...], batch: int, repeats: int, device: torch.device,
                 profile: bool = False) -> list[dict]:
    """The rows of one step kind and variant, shortest segment first, on one set of models."""
    v = Variant.parse(variant)
    if v.nvidia:
        from .nvidia_train import available

        reason = available()
        if reason:
            print(f"skipping variant nvidia: {reason}", file=sys.stderr, flush=True)
            return []
    case = Case(model, mel, disc, v, device)
    rows = []
    for segment in segments:
        def measured() -> dict:
            step, params = case.step(kind, batch, segment)
            # CUDA graphs are recorded on the third call of a shape
            peak, ms = measure(step, device, repeats, warmups=3 if v.compile else 1)
            result = {"peak_GiB": peak, "step_ms": ms}
            if profile:
                result.update(kernel_time(step, device))
                result["step_vs_kernels"] = ms / result["kernel_ms"] if result["kernel_ms"] else None
            if v.compile is None and not v.nvidia:  # the ledger knows our modules only
                result.update(saved_by_kind(step, params))
            return result

        result = guarded(measured)
        rows.append({"model": model_name, "step": kind if kind == "generator" else f"gan ({disc_name})",
                     "segment": segment, "batch": batch, "variant": variant,
                     **(result if isinstance(result, dict) else {"peak_GiB": "OOM", "step_ms": "OOM"})})
        release(device)
    if v.compile is not None:
        torch._dynamo.reset()  # compiled graphs (and CUDA-graph pools) go with the case
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
            known = [r for r in pts if isinstance(r.get(memory_key), float)]  # none on the CPU for nvidia
            ax_mem.plot([r["segment"] for r in known], [r[memory_key] for r in known], marker="o", label=variant)
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
