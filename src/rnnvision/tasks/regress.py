"""Sequence regression: a real-valued target per sequence, mean squared error (the adding problem)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.tasks.base import Batch, Task, register_task


@register_task
class RegressionTask(Task):
    """Batches ``(x, y)``: inputs and targets (B, D); the model gives (B, D). Metric: MSE (lower is better)."""

    name = "regress"
    metric = "mse"
    higher_is_better = False

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        x, y = batch
        return F.mse_loss(model(x).float(), y)

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        x, y = batch
        error = model(x).float() - y  # (B, D)
        return {
            "squared_error": error.square().sum(),
            "values": error.new_tensor(float(y.numel())),
            "n": error.new_tensor(float(len(y))),
        }

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        return {"mse": float(stats["squared_error"]) / max(float(stats["values"]), 1.0), "n": int(stats["n"])}

    def describe_epoch(self, train_loss: float, val: dict[str, Any]) -> str:
        return f"train_mse {train_loss:.4f}  val_mse {val['mse']:.4f}"
