"""Distributed setup for the training loop: torchrun's environment -> process group, device.

One process (``WORLD_SIZE`` unset) is the plain case: every collective here is then a no-op, so
the loop reads the same with or without DDP (NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from contrast_sr.errors import ContrastError
from contrast_sr.utils.device import resolve_device


@dataclass
class Distributed:
    """This process's place in the run: ``rank`` of ``world`` processes, on ``device``."""

    world: int
    rank: int
    device: torch.device
    own_group: bool = False  # the group was created here (and is destroyed by close())

    @property
    def master(self) -> bool:
        """Rank 0: the only process that writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_reduce(self, tensor: torch.Tensor, op: dist.ReduceOp | None = None) -> None:
        """In place over all ranks (sum unless ``op``)."""
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op is None else op)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel when there are several processes."""
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def check_same_weights(self, model: nn.Module) -> None:
        """Raise unless every rank holds the same weights (a checksum over all parameters)."""
        if self.world == 1:
            return
        checksum = torch.tensor(
            [sum(p.detach().double().sum().item() for p in model.parameters())], device=self.device
        )
        gathered = [torch.zeros_like(checksum) for _ in range(self.world)]
        dist.all_gather(gathered, checksum)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise ContrastError("ddp", f"ranks hold different weights: {gathered}")

    def close(self) -> None:
        """Wait for every rank; tear the process group down if it was created here."""
        if self.world > 1:
            dist.barrier()
            if self.own_group:
                dist.destroy_process_group()


def init_distributed(device: str) -> Distributed:
    """Read torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, pick the device (the local
    GPU under torchrun) and join the process group (created unless one exists)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    where = resolve_device(device)
    own_group = False
    if world > 1:
        if where.type == "cuda":
            where = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(where)
        own_group = not dist.is_initialized()
        if own_group:
            dist.init_process_group("nccl" if where.type == "cuda" else "gloo")
    return Distributed(world, rank, where, own_group)
