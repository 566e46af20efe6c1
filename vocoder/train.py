"""`python -m vocoder.train +experiment=NAME`: the Hydra entry point of training (one GPU, or torchrun).

Reads the config, builds datasets, models and losses from plain values, and hands them to
`vocoder.training.loop.Trainer`. Rerunning the same command resumes from the run's last checkpoint.
A config mistake (a model and mel that do not fit, a missing data folder, a bad value) is one line
on stderr and exit status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, DistributedSampler

from .audio import MelSpectrogram
from .data import build_dataset, collate, find_audio, libritts_files, read_filelist
from .models import Generator, build_discriminators
from .models.discriminators import DEFAULTS as DISCRIMINATOR_DEFAULTS
from .models.generator import check_mel_settings
from .models.losses import MultiScaleMelSpectrogramLoss
from .training.distributed import Distributed, cleanup, setup
from .training.loop import Trainer, TrainOptions

DATA_DIR = Path(__file__).parent / "data"
OmegaConf.register_new_resolver("vocoder_data", lambda name: str(DATA_DIR / name), replace=True)
# `discriminator/base`: the discriminators' defaults, which the group's files extend (written once, in Python)
ConfigStore.instance().store(group="discriminator", name="base", node=DISCRIMINATOR_DEFAULTS)


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
    files = find_audio(root)
    held_out = int(data.get("val_files", 0))
    return files[held_out:], files[:held_out]


def loaders(cfg: dict, env: Distributed) -> tuple[DataLoader, DataLoader | None]:
    mel, data, train = cfg["mel"], cfg["data"], cfg["train"]
    train_files, val_files = data_files(data)
    rate, hop = int(mel["sampling_rate"]), int(mel["hop_size"])
    train_set = build_dataset(train_files, rate, int(data["segment_size"]), hop, train=True,
                              seed=int(train["seed"]), name="training set")
    # a shuffle fixed by (seed, epoch), also with one process, so a resumed run sees the same order
    sampler = DistributedSampler(train_set, env.world_size, env.rank, shuffle=True, seed=int(train["seed"]),
                                 drop_last=True)
    train_loader = DataLoader(train_set, batch_size=int(train["batch_size"]), sampler=sampler,
                              num_workers=int(train["num_workers"]), collate_fn=collate, drop_last=True,
                              pin_memory=env.device.type == "cuda")
    if len(train_loader) == 0:
        raise ValueError(f"the training set has {len(train_set)} usable files, fewer than one batch "
                         f"(train.batch_size={train['batch_size']})")
    val_loader = None
    if val_files:
        val_set = build_dataset(val_files, rate, None, hop, train=False, name="validation set")
        val_loader = DataLoader(val_set, batch_size=1, collate_fn=collate)
    return train_loader, val_loader


def build_trainer(cfg: dict, env: Distributed) -> Trainer:
    """Everything the loop needs, from a plain (resolved) config dict."""
    check_mel_settings(cfg["model"], cfg["mel"])
    options = TrainOptions(**cfg["train"])
    mel = MelSpectrogram.from_config(cfg["mel"])
    train_loader, val_loader = loaders(cfg, env)  # data problems first, before building large models
    torch.manual_seed(options.seed + env.rank)
    generator = Generator.from_config(cfg["model"])
    mel_loss = MultiScaleMelSpectrogramLoss(sampling_rate=mel.sampling_rate)
    discriminators = build_discriminators(cfg["discriminator"], mel.sampling_rate)
    return Trainer(generator, discriminators, mel, mel_loss, train_loader, val_loader, options,
                   Path(cfg["run_dir"]), env, run_config=cfg)


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        print(f"vocoder.train: error: set {' '.join(f'{k}=...' for k in missing)}", file=sys.stderr, flush=True)
        sys.exit(2)
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    try:
        env = setup(plain["train"]["device"])
        trainer = build_trainer(plain, env)
    except (ValueError, FileNotFoundError) as e:  # the config's or the data's problem: one line
        print(f"vocoder.train: error: {e}", file=sys.stderr, flush=True)
        cleanup()
        sys.exit(2)
    try:
        result = trainer.fit()
        if env.is_main and result:
            pesq = f", PESQ-wb {result['pesq']:.3f}" if "pesq" in result else ""
            print(f"done: validation mel L1 {result['mel_l1']:.4f}{pesq}; checkpoints in "
                  f"{Path(plain['run_dir']) / 'checkpoints'}", flush=True)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
