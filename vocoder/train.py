"""`python -m vocoder.train +experiment=NAME`: the Hydra entry point of training (one GPU, or torchrun).

Reads the config, builds datasets, models and losses from plain values, and hands them to
`vocoder.training.loop.Trainer`. Rerunning the same command resumes from the run's last checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from .audio import MelSpectrogram
from .data import build_dataset, collate, find_audio, libritts_files, read_filelist
from .data.sampler import EpochBatchSampler
from .models import Generator, build_discriminators
from .models.losses import MultiScaleMelSpectrogramLoss
from .training.distributed import Distributed, cleanup, setup
from .training.loop import Trainer, TrainOptions
from .training.rng import seed_all

DATA_DIR = Path(__file__).parent / "data"
OmegaConf.register_new_resolver("vocoder_data", lambda name: str(DATA_DIR / name), replace=True)


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
    model, data, train = cfg["model"], cfg["data"], cfg["train"]
    train_files, val_files = data_files(data)
    rate, hop = int(model["sampling_rate"]), int(model["hop_size"])
    train_set = build_dataset(train_files, rate, int(data["segment_size"]), hop, train=True,
                              seed=int(train["seed"]), name="training set")
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
        val_set = build_dataset(val_files, rate, None, hop, train=False, name="validation set")
        val_loader = DataLoader(val_set, batch_size=1, collate_fn=collate, generator=torch.Generator())
    return train_loader, val_loader


def build_trainer(cfg: dict, env: Distributed) -> Trainer:
    """Everything the loop needs, from a plain (resolved) config dict."""
    model = cfg["model"]
    options = TrainOptions(**cfg["train"])
    train_loader, val_loader = loaders(cfg, env)  # data problems first, before building large models
    seed_all(options.seed + env.rank)
    generator = Generator.from_config(model)
    mel = MelSpectrogram.from_config(model)
    mel_loss = MultiScaleMelSpectrogramLoss(sampling_rate=model["sampling_rate"])
    return Trainer(generator, build_discriminators(cfg["discriminator"], model["sampling_rate"]), mel, mel_loss, train_loader,
                   val_loader, options, Path(cfg["run_dir"]), config=cfg, env=env)


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    env = setup(plain["train"]["device"])
    try:
        result = build_trainer(plain, env).fit()
        if env.is_main and result:
            pesq = f", PESQ-wb {result['pesq']:.3f}" if "pesq" in result else ""
            print(f"done: validation mel L1 {result['mel_l1']:.4f}{pesq}; checkpoints in "
                  f"{Path(plain['run_dir']) / 'checkpoints'}", flush=True)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
