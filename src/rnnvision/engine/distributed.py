"""Data-parallel set-up for runs launched by ``torchrun`` (torch.distributed + DDP).

``torchrun --nproc_per_node N -m rnnvision train CONFIG`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; we join the process group (NCCL on CUDA, gloo on CPU) and let DDP average the
gradients. Nothing here talks to a cluster directly.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from rnnvision.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device {name!r} asked for, but this PyTorch build or machine has no CUDA GPU; use --device cpu"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def init_distributed(device_name: str) -> DistContext:
    """Join the process group when launched by torchrun; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return DistContext(rank=rank, world_size=world_size, device=device)


def all_reduce_sums(stats: dict[str, Tensor], ctx: DistContext) -> dict[str, Tensor]:
    """Sum each statistic over all processes (identity in a single process)."""
    if not ctx.enabled:
        return stats
    reduced = {}
    for key, value in stats.items():
        value = value.to(ctx.device, torch.float64).clone()
        dist.all_reduce(value)
        reduced[key] = value
    return reduced


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()
