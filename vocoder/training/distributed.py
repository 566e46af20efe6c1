"""One process per GPU under torchrun (NCCL on GPU, gloo on CPU), or a single plain process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..runtime import resolve_device


@dataclass(frozen=True)
class Distributed:
    """Where this process runs and which rank it is."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank, "train.device")
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Distributed(rank, world_size, dev)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_finite(value: torch.Tensor, env: Distributed) -> bool:
    """True when `value` is finite on every rank (so all ranks stop together on a NaN)."""
    flag = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
    if env.enabled:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def gather_new(items: list, env: Distributed) -> list:
    """`items` of every rank, concatenated in rank order (one scalar all-reduce when all are empty)."""
    if not env.enabled:
        return list(items)
    count = torch.tensor([len(items)], dtype=torch.int64, device=env.device)
    dist.all_reduce(count)
    if int(count.item()) == 0:
        return []
    gathered: list = [None] * env.world_size
    dist.all_gather_object(gathered, list(items))
    return [item for part in gathered for item in part]
