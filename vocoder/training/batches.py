"""Endless training batches that know their place (epoch, batch within it), so that a checkpoint can
record it and a resumed run continues with the very batch the stopped one would have taken next."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from torch.utils.data import DataLoader

from ..data.sampler import EpochBatchSampler, mixed_seed

log = logging.getLogger(__name__)


class BatchStream:
    """Iterates `loader` epoch after epoch from `(epoch, batch)`; `loader.batch_sampler` must be an
    EpochBatchSampler. Each epoch re-seeds the loader's generator (worker seeds) from (seed, rank, epoch)."""

    def __init__(self, loader: DataLoader, seed: int, rank: int = 0) -> None:
        if not isinstance(loader.batch_sampler, EpochBatchSampler):
            raise TypeError("the training DataLoader needs an EpochBatchSampler as its batch_sampler, "
                            f"got {type(loader.batch_sampler).__name__}")
        if loader.batch_sampler.batches_per_epoch < 1:
            raise ValueError(f"the training set has {len(loader.dataset)} files, fewer than one batch "
                             f"per process (batch size {loader.batch_sampler.batch_size})")
        self.loader, self.sampler, self.seed, self.rank = loader, loader.batch_sampler, seed, rank
        self.epoch, self.batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    def __iter__(self) -> Iterator[dict]:
        while True:
            epoch, start = self.epoch, self.batch
            self.sampler.set_position(epoch, start)
            if hasattr(self.loader.dataset, "set_epoch"):
                self.loader.dataset.set_epoch(epoch)
            if self.loader.generator is not None:
                self.loader.generator.manual_seed(mixed_seed(self.seed, self.rank, epoch))
            for done, batch in enumerate(self.loader, start + 1):
                # the place after this batch: what a checkpoint written after its step records
                self.epoch, self.batch = (epoch, done) if done < self.batches_per_epoch else (epoch + 1, 0)
                yield batch
            self.epoch, self.batch = epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch, "batches_per_epoch": self.batches_per_epoch}

    def load_state_dict(self, state: dict | None, step: int) -> None:
        """Continue where `state` says; a checkpoint without one (older runs) places `step` batches
        into the epochs. If the epoch length changed (other data, batch size or process count), the
        next epoch starts from its first batch, with a warning that the run is no longer exact."""
        if state is None:
            self.epoch, self.batch = divmod(step, self.batches_per_epoch)
            return
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        if int(state["batches_per_epoch"]) != self.batches_per_epoch:
            log.warning("the checkpoint's epochs had %d batches, this run's have %d (other data, batch size "
                        "or number of processes): continuing with epoch %d from its first batch; the run will "
                        "not match one that never stopped", state["batches_per_epoch"],
                        self.batches_per_epoch, self.epoch + (self.batch > 0))
            self.epoch, self.batch = self.epoch + (self.batch > 0), 0
