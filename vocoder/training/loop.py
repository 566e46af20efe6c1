"""The GAN training loop of BigVGAN v2: generator vs discriminators, mel + adversarial + feature losses."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..checkpoint import load_checkpoint, load_generator
from ..evaluation import UndefinedMetric, mel_l1_of_mels, multi_resolution_stft_distance, pesq_wb
from .distributed import Distributed, all_finite
from .logger import RunLogger
from .run_dir import latest_checkpoint, save_step, set_aside
from .step import PRECISIONS, GanStep


# model settings that change how a step runs, not what is trained: a run may resume across them
RESUMABLE_CHANGES = {"activation_checkpointing"}


@dataclass
class TrainOptions:
    """What `train:` in the Hydra config holds (see vocoder/configs/train.yaml for the meaning of each)."""

    max_steps: int = 1000
    batch_size: int = 4
    precision: str = "fp32"
    learning_rate: float = 1e-4
    adam_betas: tuple[float, float] = (0.8, 0.99)
    lr_decay: float = 0.9999996
    clip_grad_norm: float = 500.0
    lambda_mel: float = 15.0
    freeze_steps: int = 0
    init_from: str | None = None
    log_interval: int = 10
    checkpoint_interval: int = 1000
    validation_interval: int = 1000
    validation_files: int = 4
    keep_checkpoints: int = 3
    resume: bool = True
    num_workers: int = 2
    device: str = "auto"
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be fp32 or bf16, got {self.precision!r}")
        for name in ("max_steps", "batch_size", "log_interval", "checkpoint_interval", "validation_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.freeze_steps < 0:
            raise ValueError(f"train.freeze_steps must be 0 or more, got {self.freeze_steps}")


class Trainer:
    """Owns the models, optimisers and schedulers; `fit()` runs to `max_steps`, resuming if it can."""

    def __init__(self, generator: nn.Module, discriminators: dict[str, nn.Module], mel: nn.Module,
                 mel_loss: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None,
                 options: TrainOptions, run_dir: Path, config: dict, env: Distributed) -> None:
        self.opt, self.run_dir, self.config, self.env = options, Path(run_dir), config, env
        dev = env.device
        self.gan = GanStep(generator.to(dev), {k: d.to(dev) for k, d in discriminators.items()}, mel.to(dev),
                           mel_loss.to(dev), learning_rate=options.learning_rate,
                           adam_betas=tuple(options.adam_betas), lr_decay=options.lr_decay,
                           clip_grad_norm=options.clip_grad_norm, lambda_mel=options.lambda_mel,
                           precision=options.precision, distributed=env.enabled)
        self.generator, self.discriminators, self.mel = self.gan.generator, self.gan.discriminators, self.gan.mel
        self.train_loader, self.val_loader = train_loader, val_loader
        self.step = 0
        self._adversarial: bool | None = None  # the phase of the last step (printed when it changes)
        self.log = RunLogger(self.run_dir, options.max_steps, enabled=env.is_main)

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict:
        return {"generator": self.generator.state_dict(), "discriminators": self.discriminators.state_dict(),
                **self.gan.state_dict(), "step": self.step, "config": self.config}

    def resume(self) -> Path | None:
        """Load the run's newest checkpoint; refuse one made with a different model config."""
        path = latest_checkpoint(self.run_dir) if self.opt.resume else None
        if path is None:
            return None
        ckpt = load_checkpoint(path, map_location=self.env.device)
        saved_model = ckpt.get("config", {}).get("model") or {}
        model = self.config.get("model") or {}
        keys = sorted(k for k in set(saved_model) | set(model)
                      if k not in RESUMABLE_CHANGES and saved_model.get(k) != model.get(k))
        if keys:
            raise RuntimeError(f"{path} was trained with a different model config (differs in: "
                               f"{', '.join(keys)}); use another run_dir or train.resume=false")
        self.generator.load_state_dict(ckpt["generator"])
        self.discriminators.load_state_dict(ckpt["discriminators"])
        self.gan.load_state_dict(ckpt)
        self.step = int(ckpt["step"])
        return path

    def initialise(self, path: str) -> None:
        """Start a fresh run from the generator weights of `path` (any checkpoint `load_generator`
        reads); its model config must be the run's. Discriminators, optimisers and step start fresh."""
        source = load_generator(path)
        model = self.generator.config  # the run's model config with the generator's defaults filled in
        keys = sorted(k for k in set(source.config) | set(model)
                      if k not in RESUMABLE_CHANGES and source.config.get(k) != model.get(k))
        if keys:
            raise RuntimeError(f"train.init_from={path} holds a generator of another model config (differs "
                               f"in: {', '.join(keys)}); pick the matching model= or another checkpoint")
        self.generator.load_state_dict(source.state_dict())

    def save(self) -> None:
        if self.env.is_main:
            path = save_step(self.run_dir, self.step, self.state(), self.opt.keep_checkpoints)
            print(f"step {self.step}: checkpoint {path}", flush=True)

    # ------------------------------------------------------------------ the loop

    def batches(self) -> Iterator[dict]:
        """Endless batches; the epoch (and so the shuffle) follows from the step on resume."""
        per_epoch = max(1, len(self.train_loader))
        for epoch in itertools.count(self.step // per_epoch):
            for holder in (self.train_loader.sampler, self.train_loader.dataset):
                if hasattr(holder, "set_epoch"):
                    holder.set_epoch(epoch)
            yield from self.train_loader

    def train_step(self, wav: Tensor) -> dict[str, float]:
        """One update on a batch (B, 1, T): discriminators then generator, or, for the first
        `freeze_steps` steps, the generator alone on the mel loss (BigVGAN's --freeze_step)."""
        adversarial = self.step >= self.opt.freeze_steps
        if self.env.is_main and self.opt.freeze_steps and adversarial != self._adversarial:
            print(f"step {self.step + 1}: " + ("the discriminators and GAN losses come in" if adversarial else
                  f"discriminators frozen, mel loss only up to step {self.opt.freeze_steps} (train.freeze_steps)"),
                  flush=True)
        self._adversarial = adversarial
        return {k: float(v) for k, v in self.gan(wav, check=self._check_finite, adversarial=adversarial).items()}

    def _check_finite(self, loss: Tensor, what: str, parts: dict[str, Tensor]) -> None:
        if not all_finite(loss, self.env):
            shown = ", ".join(f"{k} {float(v):.4g}" for k, v in parts.items())
            last = latest_checkpoint(self.run_dir) or "none yet"
            raise FloatingPointError(f"step {self.step + 1}: the {what} is not finite ({shown}); "
                                     f"the last good checkpoint is {last}")

    def fit(self) -> dict[str, float]:
        """Train to `max_steps`; validate at step 0 (fresh runs), every interval and at the end."""
        if not self.opt.resume and self.env.is_main and (old := set_aside(self.run_dir)):
            print(f"train.resume=false: moved the run's earlier checkpoints to {old}", flush=True)
        resumed = self.resume()
        if resumed is None and self.opt.init_from:
            self.initialise(self.opt.init_from)
        if self.env.is_main:
            print(f"resumed from {resumed} at step {self.step}" if resumed else
                  f"training from the generator of {self.opt.init_from} (discriminators from scratch), run dir "
                  f"{self.run_dir}" if self.opt.init_from else f"training from scratch, run dir {self.run_dir}",
                  flush=True)
        last_val = {}
        if resumed is None:
            last_val = self.validate()
        for batch in self.batches():
            if self.step >= self.opt.max_steps:
                break
            wav = batch["audio"].to(self.env.device, non_blocking=True)
            if not all_finite(wav, self.env):
                rows = torch.isfinite(wav).flatten(1).all(1).tolist()
                bad = [path for path, ok in zip(batch["path"], rows) if not ok]
                raise FloatingPointError(f"step {self.step + 1}: NaN/Inf in the training audio from "
                                         f"{', '.join(bad) or 'the batch of another process'}")
            values = self.train_step(wav)
            self.step += 1
            if self.step % self.opt.log_interval == 0 or self.step == self.opt.max_steps:
                values["lr"] = self.gan.sched_g.get_last_lr()[0]
                if self.env.device.type == "cuda":
                    values["gpu_mem_GiB"] = torch.cuda.max_memory_allocated(self.env.device) / 2**30
                values["steps_per_s"] = self.log.progress(self.step, values)
                self.log.scalars(self.step, values)
            if self.step % self.opt.validation_interval == 0 or self.step == self.opt.max_steps:
                last_val = self.validate()
            if self.step % self.opt.checkpoint_interval == 0 or self.step == self.opt.max_steps:
                self.save()
        self.log.close()
        return last_val

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mel L1, M-STFT and PESQ-wb (vocoder.evaluation, as NVIDIA's train.py validates) on whole
        validation utterances (rank 0); a file a metric is undefined for (too short, no speech) is
        left out of that metric's mean."""
        if self.val_loader is None or not self.env.is_main or self.opt.validation_files < 1:
            return {}
        self.generator.eval()
        rate = int(self.config["model"]["sampling_rate"])
        values: dict[str, list[float]] = {"mel_l1": [], "m_stft": [], "pesq": []}
        for i, batch in enumerate(self.val_loader):
            if i >= self.opt.validation_files:
                break
            wav = batch["audio"].to(self.env.device).reshape(1, -1)
            mel = self.mel(wav)
            with self.gan.autocast():
                fake = self.generator(mel)
            fake = fake.float().reshape(1, -1)[..., : wav.shape[-1]]
            mel_fake = self.mel(fake)
            values["mel_l1"].append(mel_l1_of_mels(mel, mel_fake))
            for name, metric in (("m_stft", lambda: multi_resolution_stft_distance(wav, fake)),
                                 ("pesq", lambda: pesq_wb(wav, fake, rate))):
                try:
                    values[name].append(metric())
                except UndefinedMetric:
                    pass
            if i < 2:
                if self.step == 0:
                    self.log.audio(self.step, f"target/{i}", wav, rate)
                self.log.audio(self.step, f"generated/{i}", fake, rate)
                self.log.mels(self.step, f"mel/{i}", mel, mel_fake)
        self.generator.train()
        result = {name: sum(v) / len(v) for name, v in values.items() if v}
        self.log.scalars(self.step, result, prefix="validation")
        shown = ", ".join(f"{title} {result[name]:.4f}" for name, title in
                          (("mel_l1", "mel L1"), ("m_stft", "M-STFT"), ("pesq", "PESQ-wb")) if name in result)
        print(f"step {self.step}: validation {shown}", flush=True)
        return result
