"""What a task gives the one trainer: a loss, summable evaluation statistics, metrics, reports.

Evaluation is split into per-batch *sums* (``eval_stats``) and a final step (``finalize``) so
that statistics from the shards of a DDP run, or from many batches, combine by addition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, default_collate

Batch = Any


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class Task:
    """Base class of the task families; subclasses set ``name`` and ``metric``."""

    name: str = ""
    metric: str = ""  # the validation metric that picks the best checkpoint
    higher_is_better: bool = True

    def collate(self, items: list) -> Batch:
        return default_collate(items)

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mean loss over the batch."""
        raise NotImplementedError

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Sums over the batch (including ``n``) that :meth:`finalize` turns into metrics."""
        raise NotImplementedError

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        """Metrics (JSON-able) from summed statistics."""
        raise NotImplementedError

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def write_report(
        self, model: nn.Module, dataset: Dataset, stats: dict[str, Tensor], out_dir: Path, *, device: torch.device
    ) -> list[Path]:
        """Pictures that explain a trained model on ``dataset``; returns the files written."""
        return []
