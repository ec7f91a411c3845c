"""Segmentation metrics, loss and batching: IoU by hand, the ignore label, sums that add up."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnvision.data.segmentation import IGNORE_INDEX
from rnnvision.errors import UserError
from rnnvision.tasks import make_task
from rnnvision.tasks.segment import confusion_matrix, iou_metrics


def test_iou_metrics_match_a_hand_computed_example():
    # rows true, columns predicted; class 2 never occurs in labels or predictions
    confusion = torch.tensor([[5, 1, 0], [2, 2, 0], [0, 0, 0]])
    metrics = iou_metrics(confusion)
    assert metrics["pixel_accuracy"] == pytest.approx(7 / 10)
    assert metrics["per_class_iou"][0] == pytest.approx(5 / (6 + 7 - 5))
    assert metrics["per_class_iou"][1] == pytest.approx(2 / (4 + 3 - 2))
    assert metrics["per_class_iou"][2] is None
    assert metrics["mean_iou"] == pytest.approx((5 / 8 + 2 / 5) / 2)


def test_confusion_skips_ignored_pixels_and_rejects_labels_beyond_the_classes():
    labels = torch.tensor([[0, 1, IGNORE_INDEX], [2, 2, IGNORE_INDEX]])
    predicted = torch.tensor([[0, 2, 1], [2, 1, 0]])
    confusion = confusion_matrix(labels, predicted, 3)
    assert int(confusion.sum()) == 4
    assert confusion.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    with pytest.raises(UserError, match="holds label 3, but the model has 3 classes"):
        confusion_matrix(torch.tensor([3]), torch.tensor([0]), 3)


class _Constant(nn.Module):
    """Returns fixed logits, whatever the images."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, images):
        return self.logits[: len(images)]


def test_eval_stats_add_up_over_batches_and_the_loss_ignores_void():
    torch.manual_seed(0)
    task = make_task("segment", {"class_names": ["a", "b", "c"]})
    logits = torch.randn(4, 3, 5, 6)
    masks = torch.randint(0, 3, (4, 5, 6))
    masks[0, :2] = IGNORE_INDEX
    model = _Constant(logits)
    whole = task.eval_stats(model, (torch.zeros(4, 1, 5, 6), masks))
    halves = [task.eval_stats(_Constant(logits[i : i + 2]), (torch.zeros(2, 1, 5, 6), masks[i : i + 2])) for i in (0, 2)]
    assert torch.equal(whole["confusion"], halves[0]["confusion"] + halves[1]["confusion"])
    metrics = task.finalize(whole)
    assert set(metrics) == {"pixel_accuracy", "mean_iou", "per_class_iou", "n"} and metrics["n"] == 4
    assert int(whole["confusion"].sum()) == 4 * 30 - 12

    images = torch.zeros(4, 1, 5, 6)
    loss = task.training_loss(model, (images, masks))
    changed = logits.clone()
    changed[0, :, :2] += 100.0  # only ignored pixels change
    assert torch.allclose(task.training_loss(_Constant(changed), (images, masks)), loss)
    everything_ignored = torch.full_like(masks, IGNORE_INDEX)
    assert task.training_loss(model, (images, everything_ignored)).item() == 0.0


def test_collate_refuses_mixed_sizes_with_a_hint():
    task = make_task("segment", {"class_names": ["a", "b"]})
    items = [(torch.zeros(1, 4, 4), torch.zeros(4, 4, dtype=torch.long)), (torch.zeros(1, 5, 4), torch.zeros(5, 4, dtype=torch.long))]
    with pytest.raises(UserError, match="differ in size.*data.img_size"):
        task.collate(items)
