"""Per-step tagging: a class at every step of a sequence (the copy-memory problem).

Batches are ``(x, y, scored)``: inputs (B, T, F), target classes (B, T) and a mask (B, T) of the
steps the metric counts. The loss is the cross-entropy averaged over every step, as Arjovsky et
al. (2016) train copy-memory; ``accuracy`` is measured on the scored steps only (the recalled
symbols), ``sequence_accuracy`` is the share of sequences with every scored step right, and
``loss`` the mean cross-entropy per step (in nats).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.tasks.base import Batch, Task, register_task


@register_task
class TaggingTask(Task):
    """Cross-entropy over every step; accuracy over the scored steps."""

    name = "tag"
    metric = "accuracy"
    higher_is_better = True

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        x, y, _ = batch
        return F.cross_entropy(model(x).float().transpose(1, 2), y)  # logits (B, T, K) -> (B, K, T)

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        x, y, scored = batch
        logits = model(x).float()  # (B, T, K)
        hit = logits.argmax(-1) == y  # (B, T)
        return {
            "loss": F.cross_entropy(logits.transpose(1, 2), y, reduction="sum"),
            "steps": logits.new_tensor(float(y.numel())),
            "correct": (hit & scored).sum(),
            "scored": scored.sum(),
            "sequences_correct": (hit | ~scored).all(dim=1).sum(),  # every scored step right
            "n": logits.new_tensor(float(len(y))),
        }

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        n = int(stats["n"])
        return {
            "accuracy": float(stats["correct"]) / max(int(stats["scored"]), 1),
            "sequence_accuracy": float(stats["sequences_correct"]) / max(n, 1),
            "loss": float(stats["loss"]) / max(float(stats["steps"]), 1.0),
            "n": n,
        }
