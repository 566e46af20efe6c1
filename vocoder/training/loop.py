"""The GAN training loop of BigVGAN v2: generator vs discriminators, mel + adversarial + feature losses."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..audio import MelSpectrogram
from ..booleans import parse_bool
from ..checkpoint import (discriminator_record, generator_state, model_record, read_discriminator_record,
                          read_model_config)
from ..evaluation import means, mel_l1_of_mels, score_pair
from ..models.generator import Generator
from ..runtime import DEVICES, check_precision
from .bad_files import BadFiles
from .batches import BatchStream
from .distributed import Distributed, all_finite, gather_new
from .init_from import SCHEDULES, InitSource, load_into, read_init_source
from .logger import RunLogger
from .option_types import check_types
from .resume import ResumeError, config_differences, newest_loadable, set_aside_corrupt
from .rng import rng_state, set_rng_state
from .run_dir import RunDirInUse, RunDirLock, checkpoint_dir, latest_checkpoint, remove_unfinished, save_step, set_aside
from .step import COMPILE_MODES, GanStep
from .trainable import TRAINABLE, set_trainable

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    """What `train:` in the Hydra config holds (see vocoder/configs/train.yaml for the meaning of each)."""

    max_steps: int = 1000
    batch_size: int = 4
    precision: str = "tf32"
    activation_checkpointing: bool = False
    learning_rate: float = 1e-4
    adam_betas: tuple[float, float] = (0.8, 0.99)
    lr_decay: float = 0.9999996
    clip_grad_norm: float = 500.0
    lambda_mel: float = 15.0
    lambda_pitch: float = 1.0
    freeze_steps: int = 0
    init_from: str | None = None
    init_schedule: str = "restart"
    trainable: str = "all"
    freeze_stages: int = 0
    log_interval: int = 10
    checkpoint_interval: int = 1000
    validation_interval: int = 1000
    validation_files: int = 4
    keep_checkpoints: int = 3
    resume: bool = True
    num_workers: int = 2
    device: str = "auto"
    seed: int = 1234
    max_bad_file_fraction: float = 0.01
    discriminator_checkpointing: bool = False
    compile: str | None = None
    cudnn_benchmark: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # train.resume=no must mean no
            if f.type in (bool, "bool"):
                setattr(self, f.name, parse_bool(getattr(self, f.name), f"train.{f.name}"))
        check_types(self, "train")  # train.max_steps=abc names train.max_steps
        check_precision(self.precision, "train.precision", training=True)
        for name in ("max_steps", "batch_size", "log_interval", "checkpoint_interval", "validation_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("validation_files", "keep_checkpoints", "num_workers", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be at least 0, got {getattr(self, name)}")
        for name in ("learning_rate", "clip_grad_norm", "lr_decay"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be above 0, got {getattr(self, name)}")
        if self.lr_decay > 1:
            raise ValueError(f"train.lr_decay must be at most 1 (a decay per step), got {self.lr_decay}")
        if not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"train.adam_betas must be two numbers in [0, 1), got {list(self.adam_betas)}")
        if not 0 <= self.max_bad_file_fraction < 1:
            raise ValueError(f"train.max_bad_file_fraction must be in [0, 1), got {self.max_bad_file_fraction}")
        if self.device not in DEVICES:
            raise ValueError(f"train.device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.lambda_pitch < 0:
            raise ValueError(f"train.lambda_pitch must be 0 or more, got {self.lambda_pitch}")
        if self.freeze_steps < 0:
            raise ValueError(f"train.freeze_steps must be 0 or more, got {self.freeze_steps}")
        if self.init_schedule not in SCHEDULES:
            raise ValueError(f"train.init_schedule must be one of {', '.join(SCHEDULES)}, got {self.init_schedule!r}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"train.trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")
        if self.compile not in COMPILE_MODES:
            modes = ", ".join(str(m) for m in COMPILE_MODES[1:])
            raise ValueError(f"train.compile must be null or one of {modes}, got {self.compile!r}")


class Trainer:
    """Owns the models, optimisers and schedulers; `fit()` runs to `max_steps`, resuming if it can.

    Checkpoints record the model as `vocoder.checkpoint.model_record` (the generator's config, the
    mel settings and `discriminator`, the settings the discriminators were built from), which resume
    compares; and `run_config`, the run's whole config as a plain dict, for the record only: nothing
    reads it back.
    """

    def __init__(self, generator: Generator, discriminators: dict[str, nn.Module], mel: MelSpectrogram,
                 mel_loss: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None,
                 options: TrainOptions, run_dir: Path, env: Distributed, run_config: dict | None = None,
                 init: InitSource | None = None, discriminator: dict | None = None) -> None:
        self.opt, self.run_dir, self.run_config, self.env = options, Path(run_dir), run_config, env
        self.discriminator = discriminator
        self.init = init  # what train.init_from holds, read already (vocoder.train took its settings)
        # before DDP wraps the generator: it registers the parameters that need a gradient
        self.trained_params = set_trainable(generator, options.trainable, options.freeze_stages)
        dev = env.device
        self.gan = GanStep(generator.to(dev), {k: d.to(dev) for k, d in discriminators.items()}, mel.to(dev),
                           mel_loss.to(dev), learning_rate=options.learning_rate,
                           adam_betas=tuple(options.adam_betas), lr_decay=options.lr_decay,
                           clip_grad_norm=options.clip_grad_norm, lambda_mel=options.lambda_mel,
                           lambda_auxiliary=options.lambda_pitch,
                           precision=options.precision, distributed=env.enabled,
                           compile=options.compile)
        self.generator, self.discriminators, self.mel = self.gan.generator, self.gan.discriminators, self.gan.mel
        self.train_loader, self.val_loader = train_loader, val_loader
        self.train_batches = BatchStream(train_loader, options.seed, env.rank)
        self.bad_files = BadFiles(len(train_loader.dataset), options.max_bad_file_fraction)
        self.step = 0
        self._adversarial: bool | None = None  # the phase of the last step (printed when it changes)
        self.log = RunLogger(self.run_dir, options.max_steps, enabled=env.is_main)

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict:
        """What a checkpoint holds: models, optimisers, schedulers, step, config, and for an exact
        resume the data position, the bad files found and every process's RNG streams."""
        rngs = [rng_state(self.env.device)]
        if self.env.enabled:
            rngs = [None] * self.env.world_size
            dist.all_gather_object(rngs, rng_state(self.env.device))
        return {"generator": self.generator.state_dict(), "discriminators": self.discriminators.state_dict(),
                **self.gan.state_dict(), "step": self.step,
                "model": model_record(self.generator, self.mel.config, self.discriminator),
                "run_config": self.run_config,
                "data": {**self.train_batches.state_dict(), "bad_files": self.bad_files.state_dict()},
                "rng": rngs}

    def resume(self) -> Path | None:
        """Load the run's newest loadable checkpoint (setting aside newer corrupt ones); refuse one
        made with another model or mel config, or (from the recorded run config) other discriminators."""
        found = newest_loadable(self.run_dir, self.env.device) if self.opt.resume else None
        if found is None:
            return None
        path, ckpt, corrupt = found
        saved = read_model_config(ckpt, str(path))
        keys = self._model_differences(saved)
        if keys:
            raise ResumeError(f"{path} was trained with a different model config (differs in: "
                              f"{', '.join(keys)}); use another run_dir or train.resume=false")
        saved_discriminator = read_discriminator_record(ckpt)
        if saved_discriminator is not None and self.discriminator is not None:
            keys = config_differences(saved_discriminator, discriminator_record(self.discriminator))
            if keys:
                raise ResumeError(f"{path} was trained with a different discriminator config (differs in: "
                                  f"{', '.join(keys)}); use another run_dir or train.resume=false")
        if int(ckpt["step"]) > self.opt.max_steps:
            raise ResumeError(f"train.max_steps={self.opt.max_steps} is below the step of the newest checkpoint "
                              f"({path} is at step {ckpt['step']}); raise train.max_steps to train on, or use "
                              f"train.resume=false to start over")
        self.generator.load_state_dict(generator_state(ckpt["generator"]))
        self.discriminators.load_state_dict(ckpt["discriminators"])
        self.gan.load_state_dict(ckpt)
        self.step = int(ckpt["step"])
        data = ckpt.get("data")
        self.train_batches.load_state_dict(data, self.step)
        self.bad_files.load_state_dict((data or {}).get("bad_files", []))
        self.train_loader.dataset.known_bad = set(self.bad_files.found)
        rngs = ckpt.get("rng")
        if rngs and len(rngs) == self.env.world_size:
            set_rng_state(rngs[self.env.rank], self.env.device)
        elif self.env.is_main:
            log.warning("%s holds no random-number state for %d processes: the run continues with fresh "
                        "streams and will not match one that never stopped", path, self.env.world_size)
        if self.env.enabled:
            dist.barrier()  # every process has read the checkpoints before any is renamed
        if self.env.is_main:
            set_aside_corrupt(corrupt, path)
        return path

    def _model_differences(self, saved: dict) -> list[str]:
        """`model.K` / `mel.K` keys where a recorded {generator, mel} record differs from this run's."""
        model = model_record(self.generator, self.mel.config)
        return [f"{group}.{k}" for group, name in (("model", "generator"), ("mel", "mel"))
                for k in sorted(set(saved[name]) | set(model[name])) if saved[name].get(k) != model[name].get(k)]

    def initialise(self, source: str | InitSource) -> str:
        """Start a fresh run from `source` (train.init_from; see vocoder.training.init_from): its
        generator, and where it holds them its discriminators and optimiser states; the step and
        learning rate restart or continue (train.init_schedule). Its generator and mel settings must
        be the run's. What was loaded, for the log."""
        if isinstance(source, str):
            source = read_init_source(source)
        keys = self._model_differences(source.model)
        if keys:
            raise ResumeError(f"train.init_from={source.path} holds a generator of another model config (differs "
                              f"in: {', '.join(keys)}); pick the matching model= and mel= or another checkpoint")
        step = load_into(self.gan, source, self.opt.init_schedule, self.opt.learning_rate, tuple(self.opt.adam_betas))
        if step >= self.opt.max_steps:
            raise ResumeError(f"train.max_steps={self.opt.max_steps} is not above step {step}, where "
                              f"train.init_schedule=continue carries on from {source.path}; raise train.max_steps "
                              f"or use train.init_schedule=restart")
        self.step = step
        if source.discriminators is None:
            return f"training from the generator of {source.path} (discriminators from scratch)"
        lr = self.gan.optim_g.param_groups[0]["lr"]
        return (f"training from {source.path} ({source.pieces()}); step {step}, learning rate {lr:.4g} "
                f"(train.init_schedule={self.opt.init_schedule})")

    def save(self) -> None:
        state = self.state()  # on every process: it gathers their RNG states
        if self.env.is_main:
            try:
                path = save_step(self.run_dir, self.step, state, self.opt.keep_checkpoints)
            except (OSError, RuntimeError) as err:  # a full disk (torch's zip writer raises RuntimeError): nothing
                # of the write is left behind
                reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip().splitlines()[0]
                if not isinstance(err, OSError):
                    reason = f"torch.save failed: {reason}; is the disk full?"
                raise OSError(f"step {self.step}: could not write a checkpoint into {checkpoint_dir(self.run_dir)} "
                              f"({reason}); the newest complete checkpoint is "
                              f"{latest_checkpoint(self.run_dir) or 'none yet'}") from err
            print(f"step {self.step}: checkpoint {path}", flush=True)

    # ------------------------------------------------------------------ the loop

    def note_bad_files(self, batch: dict) -> None:
        """Warn about files that failed to load (every process's, once each), pass over them from
        now on; stop the run when too many are bad."""
        skipped = gather_new(batch.get("skipped", []), self.env)
        new = self.bad_files.add(skipped, self.step + 1, warn=self.env.is_main)
        self.train_loader.dataset.known_bad.update(new)

    def train_step(self, wav: Tensor, mel: Tensor | None = None,
                   targets: dict[str, Tensor] | None = None) -> dict[str, float]:
        """One update on a batch (B, 1, T): discriminators then generator, or, for the first
        `freeze_steps` steps, the generator alone on the mel loss (BigVGAN's --freeze_step).
        `targets`: the batch's values of `generator.targets` (a conditioning's, e.g. F0)."""
        adversarial = self.step >= self.opt.freeze_steps
        if self.env.is_main and self.opt.freeze_steps and adversarial != self._adversarial:
            print(f"step {self.step + 1}: " + ("the discriminators and GAN losses come in" if adversarial else
                  f"discriminators frozen, mel loss only up to step {self.opt.freeze_steps} (train.freeze_steps)"),
                  flush=True)
        self._adversarial = adversarial
        out = self.gan(wav, check=self._check_finite, adversarial=adversarial, mel=mel, targets=targets)
        return {k: float(v) for k, v in out.items()}

    def _check_finite(self, loss: Tensor, what: str, parts: dict[str, Tensor]) -> None:
        if not all_finite(loss, self.env):
            shown = ", ".join(f"{k} {float(v):.4g}" for k, v in parts.items())
            last = latest_checkpoint(self.run_dir) or "none yet"
            raise FloatingPointError(f"step {self.step + 1}: the {what} is not finite ({shown}); "
                                     f"the last good checkpoint is {last}")

    def lock_run_dir(self) -> RunDirLock | None:
        """Rank 0 locks the run dir (`RunDirLock`); every process stops with RunDirInUse when another
        live run holds it."""
        lock, refusal = None, None
        if self.env.is_main:
            try:
                lock = RunDirLock(self.run_dir)
            except RunDirInUse as err:
                refusal = err.strerror or str(err)
        if self.env.enabled:
            shared = [refusal]
            dist.broadcast_object_list(shared, src=0)
            refusal = shared[0]
        if refusal:
            raise RunDirInUse(refusal)
        return lock

    def fit(self) -> dict[str, float]:
        """Train to `max_steps` holding the run dir's lock; validate at step 0 (fresh runs), every
        interval and at the end, each time after the checkpoint of that step is written."""
        lock = self.lock_run_dir()
        try:
            return self._fit()
        finally:
            if lock is not None:
                lock.release()

    def _fit(self) -> dict[str, float]:
        if self.env.is_main and (unfinished := remove_unfinished(self.run_dir))[0]:
            print(f"removed {unfinished[0]} unfinished checkpoint files ({unfinished[1] / 2**20:.1f} MiB) "
                  "left by a run that was killed", flush=True)
        if not self.opt.resume and self.env.is_main and (old := set_aside(self.run_dir)):
            print(f"train.resume=false: moved the run's earlier checkpoints to {old}", flush=True)
        resumed = self.resume()  # the run's own checkpoint wins over train.init_from
        started = None
        if resumed is None and self.opt.init_from:
            started = self.initialise(self.init or self.opt.init_from)
        if self.env.is_main:
            print(f"resumed from {resumed} at step {self.step}" if resumed else
                  f"{started}, run dir {self.run_dir}" if started else f"training from scratch, run dir {self.run_dir}",
                  flush=True)
            trained, total = self.trained_params
            if trained < total:
                print(f"training {trained:,} of the generator's {total:,} parameter values (train.trainable="
                      f"{self.opt.trainable}, train.freeze_stages={self.opt.freeze_stages})", flush=True)
        last_val = {}
        if resumed is None:
            last_val = self.validate()
        elif self.step >= self.opt.max_steps and self.env.is_main:
            print(f"the run is at train.max_steps={self.opt.max_steps} already; raise train.max_steps to "
                  f"train on", flush=True)
        batches = iter(self.train_batches)
        while self.step < self.opt.max_steps:
            batch = next(batches)
            self.note_bad_files(batch)
            wav = batch["audio"].to(self.env.device, non_blocking=True)
            if not all_finite(wav, self.env):
                rows = torch.isfinite(wav).flatten(1).all(1).tolist()
                bad = [path for path, ok in zip(batch["path"], rows) if not ok]
                raise FloatingPointError(f"step {self.step + 1}: NaN/Inf in the training audio from "
                                         f"{', '.join(bad) or 'the batch of another process'}")
            mel = batch.get("mel")  # data.mel_dir: a TTS model's mels, teacher-forced
            targets = {k: batch[k].to(self.env.device) for k in self.generator.targets if k in batch}
            values = self.train_step(wav, None if mel is None else mel.to(self.env.device, non_blocking=True),
                                     targets)
            self.step += 1
            if self.step % self.opt.log_interval == 0 or self.step == self.opt.max_steps:
                values["lr"] = self.gan.sched_g.get_last_lr()[0]
                if self.env.device.type == "cuda":
                    values["gpu_mem_GiB"] = torch.cuda.max_memory_allocated(self.env.device) / 2**30
                values["steps_per_s"] = self.log.progress(self.step, values)
                self.log.scalars(self.step, values)
            if self.step % self.opt.checkpoint_interval == 0 or self.step == self.opt.max_steps:
                self.save()  # before validating: nothing between a step and its checkpoint can lose it
            if self.step % self.opt.validation_interval == 0 or self.step == self.opt.max_steps:
                last_val = self.validate()
        self.log.close()
        return last_val

    def validate(self) -> dict[str, float]:
        """Mel L1, M-STFT and PESQ-wb (vocoder.evaluation, as NVIDIA's train.py validates) on whole
        validation utterances (rank 0), averaged by `vocoder.evaluate`'s rule: a generated file a metric cannot
        score (silent) counts at its worst value, a reference it cannot score (too short, no speech) is left
        out. The training's RNG streams are left as they were."""
        if self.val_loader is None or not self.env.is_main or self.opt.validation_files < 1:
            return {}
        streams = rng_state(self.env.device)  # validation must not shift the training's random numbers
        try:
            with torch.no_grad():
                return self._validate()
        finally:
            set_rng_state(streams, self.env.device)

    def _validate(self) -> dict[str, float]:
        self.generator.eval()
        rate = int(self.mel.sampling_rate)
        rows: list[dict[str, float]] = []
        for i, batch in enumerate(self.val_loader):
            if i >= self.opt.validation_files:
                break
            for path, reason in batch["skipped"]:
                log.warning("validation: skipping %s: %s", path, reason)
            wav = batch["audio"].to(self.env.device).reshape(1, -1)
            try:
                mel = self.mel(wav)
            except ValueError as err:  # too short for the STFT: passed over, never the end of the run
                log.warning("validation: skipping %s: %s", batch["path"][0], err)
                continue
            with self.gan.autocast():
                fake = self.generator(batch["mel"].to(self.env.device) if "mel" in batch else mel)
            fake = fake.float().reshape(1, -1)[..., : wav.shape[-1]]
            mel_fake = self.mel(fake)
            scores = score_pair(wav.reshape(-1), fake.reshape(-1), rate, mel=self.mel, metrics=("pesq", "m_stft"))
            if scores.worst:  # the generated audio alone leaves a metric undefined: scored at its worst value
                log.warning("validation: %s: %s", batch["path"][0], "; ".join(scores.notes))
            rows.append({"mel_l1": mel_l1_of_mels(mel, mel_fake), **scores})
            if i < 2:
                if self.step == 0:
                    self.log.audio(self.step, f"target/{i}", wav, rate)
                self.log.audio(self.step, f"generated/{i}", fake, rate)
                self.log.mels(self.step, f"mel/{i}", mel, mel_fake)
        self.generator.train()
        averages, _ = means(rows, ("mel_l1", "m_stft", "pesq"))
        result = {name: value for name, value in averages.items() if not math.isnan(value)}
        self.log.scalars(self.step, result, prefix="validation")
        shown = ", ".join(f"{title} {result[name]:.4f}" for name, title in
                          (("mel_l1", "mel L1"), ("m_stft", "M-STFT"), ("pesq", "PESQ-wb")) if name in result)
        print(f"step {self.step}: validation {shown}", flush=True)
        return result
