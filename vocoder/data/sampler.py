"""Training batches that can start anywhere: epoch `e`'s shuffle is fixed by (seed, e) and shared out
across ranks, and iteration can begin at any batch of it, so a resumed run sees the batches it missed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def mixed_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from a tuple of integers (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(v) for v in values]).generate_state(1, np.uint64)[0] >> 1)


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices for one rank: each epoch a permutation fixed by (seed, epoch), cut
    to a multiple of `world_size * batch_size`, rank r taking every world_size-th index from r.

    `set_position(epoch, batch)` selects where the next iteration starts; `len()` counts the batches
    left from there, `batches_per_epoch` the whole epoch's.
    """

    def __init__(self, size: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.size, self.batch_size, self.seed, self.rank, self.world_size = size, batch_size, seed, rank, world_size
        self.batches_per_epoch = size // (world_size * batch_size)
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, batch: int = 0) -> None:
        """Start the next iteration at batch `batch` (0-based) of epoch `epoch`."""
        if not 0 <= batch <= self.batches_per_epoch:
            raise ValueError(f"batch {batch} is outside an epoch of {self.batches_per_epoch} batches")
        self.epoch, self.start = epoch, batch

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every batch of this rank in `epoch`, in order."""
        gen = torch.Generator().manual_seed(mixed_seed(self.seed, epoch))
        order = torch.randperm(self.size, generator=gen)[: self.batches_per_epoch * self.world_size * self.batch_size]
        mine = order[self.rank::self.world_size].tolist()
        return [mine[i:i + self.batch_size] for i in range(0, len(mine), self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.epoch_batches(self.epoch)[self.start:])

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start
