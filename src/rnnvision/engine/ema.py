"""An exponential moving average of a model's weights (Polyak averaging).

After every optimizer step ``avg <- d * avg + (1 - d) * w`` for every floating-point parameter
and buffer (batch-norm statistics included); integer buffers are copied. The decay warms up as
``d_k = min(decay, (1 + k) / (10 + k))`` at step k, so the first steps' random weights fade out
quickly (the schedule of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``). The averaged
weights usually generalise better than the last ones when training ends before the learning rate
has settled (Polyak & Juditsky 1992; Izmailov et al. 2018).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """A frozen copy of ``model`` (:attr:`module`) that :meth:`update` moves towards its weights.

    Args:
        model: the model being trained; the copy starts from its current weights.
        decay: the long-run decay ``d`` in ``(0, 1)``; about ``1 / (1 - d)`` recent steps dominate.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        # (average, source) tensor pairs, found once: training and load_state_dict change both in place
        pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))
        self._averaged = [avg for avg, _ in pairs if avg.is_floating_point()]
        self._sources = [value for avg, value in pairs if avg.is_floating_point()]
        self._copied = [(avg, value) for avg, value in pairs if not avg.is_floating_point()]

    def decay_at(self, step: int) -> float:
        """The decay used at optimizer step ``step`` (0-based)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the model's weights after optimizer step ``step``."""
        torch._foreach_lerp_(self._averaged, self._sources, 1.0 - self.decay_at(step))
        for avg, value in self._copied:
            avg.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
