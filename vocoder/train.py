"""`python -m vocoder.train +experiment=NAME`: the Hydra entry point of training (one GPU, or torchrun).

Reads the config, builds datasets, models and losses from plain values, and hands them to
`vocoder.training.loop.Trainer`. Rerunning the same command resumes from the run's last checkpoint.
A config mistake (a model and mel that do not fit, a missing data folder, a bad value) is one line
on stderr and exit status 2.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from .audio import MelSpectrogram
from .checkpoint import CheckpointError
from .cli import EntryPoint, error_line, fail
from .data import EpochBatchSampler, build_dataset, collate, find_audio, libritts_files, read_filelist
from .data.files import hold_out
from .data.mel_pairs import build_mel_pairs
from .data.pitch_tracks import PitchTracks
from .models import Generator, build_discriminators
from .models.discriminators import DEFAULTS as DISCRIMINATOR_DEFAULTS
from .models.generator import check_mel_settings
from .models.losses import MultiScaleMelSpectrogramLoss
from .runtime import set_cudnn_benchmark
from .training.bad_files import TooManyBadFiles
from .training.distributed import Distributed, cleanup, setup
from .training.init_from import read_init_source, run_settings
from .training.loop import Trainer, TrainOptions
from .training.resume import ResumeError
from .training.rng import seed_all
from .training.run_dir import latest_checkpoint

PROG = "vocoder.train"
USAGE = "usage: python -m vocoder.train +experiment=NAME [key=value ...]"
CLI = EntryPoint(PROG, "train", USAGE, open_config=True)  # +model.key=... may add a setting
DATA_DIR = Path(__file__).parent / "data"
# a user's mistake or a problem in their data: one line, no traceback (a bug still shows its traceback)
USER_ERRORS = (ValueError, OSError, CheckpointError, ResumeError, TooManyBadFiles, FloatingPointError)
OmegaConf.register_new_resolver("vocoder_data", lambda name: str(DATA_DIR / name), replace=True)
# `discriminator/base`: the discriminators' defaults, which the group's files extend (written once, in Python)
ConfigStore.instance().store(group="discriminator", name="base", node=DISCRIMINATOR_DEFAULTS)
# `model=from_checkpoint` (and mel=, discriminator=): no settings of its own, the train.init_from
# checkpoint's (what +experiment=finetune picks)
for _group in ("model", "mel", "discriminator"):
    ConfigStore.instance().store(group=_group, name="from_checkpoint", node={})


def data_files(data: dict) -> tuple[list[Path], list[Path]]:
    """(train files, validation files) for the `data:` config group."""
    name, root = data["name"], data.get("root")
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(f"data.root={root!r} is not a folder (set data.root=/path/to/{name})")
    if name == "libritts":
        return libritts_files(root, data["train_subsets"]), libritts_files(root, data["val_subsets"])
    if data.get("train_filelist"):
        train = read_filelist(data["train_filelist"], root=root)
        val = read_filelist(data["val_filelist"], root=root) if data.get("val_filelist") else []
        return train, val
    return hold_out(find_audio(root), int(data.get("val_files", 0)), root)


def loaders(cfg: dict, env: Distributed) -> tuple[DataLoader, DataLoader | None]:
    mel, data, train = cfg["mel"], cfg["data"], cfg["train"]
    train_files, val_files = data_files(data)
    rate, hop = int(mel["sampling_rate"]), int(mel["hop_size"])
    segment = data["segment_size"]
    if isinstance(segment, bool) or not isinstance(segment, int) or segment < hop or segment % hop:
        raise ValueError(f"data.segment_size must be a positive multiple of mel.hop_size={hop}, got {segment!r}")
    pitch = None
    if cfg["model"].get("pitch_source"):
        if data.get("mel_dir"):
            raise ValueError("data.mel_dir: a generator with a pitch source (model.pitch_source) trains on the F0 "
                             "of the audio it is given, which teacher-forced TTS mels do not come with")
        pitch = PitchTracks(Path(cfg["run_dir"]) / "pitch_cache", rate, hop)
        if env.is_main:
            print(f"pitch source: F0 targets are torchcrepe 'tiny' tracks of the training files, computed as "
                  f"they are first read and kept in {pitch.cache_dir}", flush=True)

    def dataset(files: list[Path], segment: int | None, is_train: bool, name: str):
        if data.get("mel_dir"):  # teacher-forced: a TTS model's mels beside the audio
            return build_mel_pairs(files, data["root"], data["mel_dir"], int(mel["num_mels"]), rate, segment, hop,
                                   train=is_train, seed=int(train["seed"]), name=name,
                                   tolerance=int(data.get("mel_tolerance_frames", 2)), n_fft=int(mel["n_fft"]))
        return build_dataset(files, rate, segment, hop, train=is_train, seed=int(train["seed"]), name=name,
                             n_fft=int(mel["n_fft"]), pitch=pitch if is_train else None)

    train_set = dataset(train_files, int(data["segment_size"]), True, "training set")
    # batches fixed by (seed, epoch), startable at any batch: a resumed run takes the ones it missed;
    # the loader's own generator keeps worker seeding off the global torch RNG
    sampler = EpochBatchSampler(len(train_set), int(train["batch_size"]), seed=int(train["seed"]),
                                rank=env.rank, world_size=env.world_size)
    train_loader = DataLoader(train_set, batch_sampler=sampler, num_workers=int(train["num_workers"]),
                              collate_fn=collate, pin_memory=env.device.type == "cuda",
                              generator=torch.Generator())
    if sampler.batches_per_epoch == 0:
        raise ValueError(f"the training set has {len(train_set)} usable files, fewer than one batch "
                         f"(train.batch_size={train['batch_size']}"
                         f"{f' on each of {env.world_size} processes' if env.enabled else ''})")
    val_loader = None
    if val_files:
        val_set = dataset(val_files, None, False, "validation set")
        val_loader = DataLoader(val_set, batch_size=1, collate_fn=collate, generator=torch.Generator())
    return train_loader, val_loader


def build_trainer(cfg: dict, env: Distributed) -> Trainer:
    """Everything the loop needs, from a plain (resolved) config dict."""
    known = {f.name for f in dataclasses.fields(TrainOptions)}
    unknown = sorted(set(cfg["train"]) - known)
    if unknown:
        raise ValueError(f"train.{unknown[0]} is not a training option (they are: {', '.join(sorted(known))})")
    options = TrainOptions(**cfg["train"])
    init = None
    if options.init_from:  # the checkpoint's model, mel and discriminator settings become the run's
        init = read_init_source(options.init_from)
        cfg = {**cfg, **run_settings(cfg, init)}
    check_mel_settings(cfg["model"], cfg["mel"])
    set_cudnn_benchmark(options.cudnn_benchmark)  # process-wide: set here, once
    mel = MelSpectrogram.from_config(cfg["mel"])
    train_loader, val_loader = loaders(cfg, env)  # data problems first, before building large models
    seed_all(options.seed + env.rank)
    try:
        generator = Generator.from_config(cfg["model"], activation_checkpointing=options.activation_checkpointing)
        discriminators = build_discriminators(cfg["discriminator"], mel.sampling_rate,
                                              checkpointing=options.discriminator_checkpointing)
    except (TypeError, KeyError) as err:  # a missing or mistyped model/discriminator setting
        raise ValueError(f"the model or discriminator config does not describe a model: {err!r}") from err
    mel_loss = MultiScaleMelSpectrogramLoss(sampling_rate=mel.sampling_rate)
    return Trainer(generator, discriminators, mel, mel_loss, train_loader, val_loader, options,
                   Path(cfg["run_dir"]), env, run_config=cfg, init=init, discriminator=cfg["discriminator"])


def _run(plain: dict) -> None:
    """Train from the resolved config; user errors (bad values, missing data, an unusable checkpoint,
    too many bad files, a NaN) end in one line naming the key or file, exit status 2."""
    try:
        env = setup(plain["train"]["device"])  # train.device=cuda without CUDA is one of these
    except (RuntimeError, ValueError) as err:
        fail(PROG, error_line(err))
    trainer = None
    try:
        trainer = build_trainer(plain, env)
        result = trainer.fit()
        if env.is_main and result:
            pesq = f", PESQ-wb {result['pesq']:.3f}" if "pesq" in result else ""
            print(f"done: validation mel L1 {result['mel_l1']:.4f}{pesq}; checkpoints in "
                  f"{Path(plain['run_dir']) / 'checkpoints'}", flush=True)
    except USER_ERRORS as err:
        fail(PROG, error_line(err))
    except KeyboardInterrupt:
        where = f" at step {trainer.step}" if trainer is not None else ""
        last = latest_checkpoint(plain["run_dir"])
        fail(PROG, f"interrupted{where}; rerun the same command to resume from "
                   f"{last or 'the start (no checkpoint yet)'}", 130)
    finally:
        cleanup()


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    plain = CLI.options(cfg)
    for section in ("train", "model", "mel", "data", "discriminator"):
        if not isinstance(plain.get(section), dict):
            fail(PROG, f"{section} must be a config group of settings, got {plain.get(section)!r}")
    _run(plain)


def main() -> None:
    """`python -m vocoder.train [overrides]`: Hydra's override errors as one line too."""
    CLI.check_argv(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
