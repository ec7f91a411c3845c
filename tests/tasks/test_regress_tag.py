"""The regression and tagging tasks: losses and metrics are what their docstrings say, and batches add up."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnvision.tasks import RegressionTask, TaggingTask, make_task


class Fixed(nn.Module):
    """Returns the given output whatever the input (the input is only used for its batch rows)."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output[: len(x)]


def test_regression_mse_over_batches_equals_the_mse_of_all():
    torch.manual_seed(0)
    prediction, target = torch.rand(10, 2), torch.rand(10, 2)
    task = make_task("regress", {})
    assert isinstance(task, RegressionTask) and task.metric == "mse" and not task.higher_is_better
    x = torch.zeros(10, 5, 3)
    loss = task.training_loss(Fixed(prediction), (x, target))
    assert float(loss) == pytest.approx(float(((prediction - target) ** 2).mean()))
    first = task.eval_stats(Fixed(prediction[:4]), (x[:4], target[:4]))
    second = task.eval_stats(Fixed(prediction[4:]), (x[4:], target[4:]))
    metrics = task.finalize({k: first[k] + second[k] for k in first})
    assert metrics["mse"] == pytest.approx(float(loss)) and metrics["n"] == 10
    assert task.is_better(0.1, 0.2) and not task.is_better(0.3, 0.2)


def test_tagging_scores_only_the_marked_steps_and_averages_the_loss_over_every_step():
    targets = torch.tensor([[0, 0, 3, 4], [0, 0, 1, 2]])
    scored = torch.tensor([[False, False, True, True]] * 2)
    predicted = torch.tensor([[5, 5, 3, 4], [0, 0, 1, 0]])  # first: unscored steps wrong, scored right; second: 1 of 2
    logits = F.one_hot(predicted, 6).float() * 4.0  # (B, T, K)
    task = make_task("tag", {"class_names": list("abcdef")})
    assert isinstance(task, TaggingTask) and task.metric == "accuracy"
    batch = (torch.zeros(2, 4, 3), targets, scored)
    loss = task.training_loss(Fixed(logits), batch)
    assert float(loss) == pytest.approx(float(F.cross_entropy(logits.reshape(8, 6), targets.reshape(8))))
    metrics = task.finalize(task.eval_stats(Fixed(logits), batch))
    assert metrics["accuracy"] == pytest.approx(3 / 4)  # the unscored steps of the first sequence do not count
    assert metrics["sequence_accuracy"] == pytest.approx(1 / 2)
    assert metrics["loss"] == pytest.approx(float(loss)) and metrics["n"] == 2


def test_tagging_a_network_that_remembers_nothing_scores_the_copy_baseline():
    delay, memory = 30, 10
    steps = delay + 2 * memory
    targets = torch.randint(1, 9, (64, memory), generator=torch.Generator().manual_seed(0))
    y = torch.cat([torch.zeros(64, steps - memory, dtype=torch.long), targets], dim=1)
    scored = torch.zeros(64, steps, dtype=torch.bool)
    scored[:, -memory:] = True
    logits = torch.full((64, steps, 9), -1e4)
    logits[:, : steps - memory, 0] = 0.0  # certain of the blank before the recall
    logits[:, steps - memory :, 1:] = 0.0  # uniform over the 8 symbols after it
    task = make_task("tag", {})
    metrics = task.finalize(task.eval_stats(Fixed(logits), (torch.zeros(64, steps, 10), y, scored)))
    assert metrics["loss"] == pytest.approx(memory * math.log(8) / steps, rel=1e-6)
