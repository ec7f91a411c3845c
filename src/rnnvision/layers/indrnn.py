"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR).

Each unit has one recurrent weight of its own instead of a row of a matrix (section 3)::

    h_t = relu(W x_t + b + u * h_{t-1})          W (H, I), b (H,), u (H,); * is elementwise

so the gradient reaching step t through a unit is a product of its own ``u`` and ReLU slopes,
which the recurrent weights control directly (u = 1 carries a value unchanged for ever). Layers
stack (section 3.2): each layer's outputs are the next one's inputs. Initialisation here: u ~ U(0, 1)
(every unit starts stable, with memory times spread over the short and long ones), W and b as
``torch.nn.Linear``.

``impl="reference"`` runs :func:`rnnvision.ops.indrnn.indrnn_reference`, the loop above with
autograd recording every step (the specification); ``"fused"`` (and ``"auto"``)
:func:`~rnnvision.ops.indrnn.indrnn_fused`, the same loop in one autograd function that keeps only
the outputs (B, T, H) instead of a graph of T steps, with its backward written out.
Both give the same outputs and gradients (tests/layers/test_indrnn.py, float64). The fused loop
keeps 12.1 MiB for the backward in 10 saved tensors where the reference's graph keeps 18.1 MiB in
6,002, and its training step took 0.5-0.8x the reference's time on one CPU thread (T = 1000,
batch 16, 98 units, 2 layers; ``benchmarks/bench_indrnn.py``, BENCHMARKS.md): each step is a few
small elementwise operations either way, so the Python loop still dominates. A compiled kernel
would be the fast path proper; not written.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import RecurrentImpl, check_impl
from rnnvision.ops.indrnn import indrnn_fused, indrnn_reference


class IndRNN(nn.Module):
    """Stacked IndRNN layers: (B, T, I) -> (outputs (B, T, H), final states (L, B, H)).

    Args:
        input_size, hidden_size: I and H.
        num_layers: stacked layers, each reading the previous one's outputs.
        impl: ``"auto"`` (= ``"fused"``), ``"fused"`` or ``"reference"`` (see the module docstring).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, impl: RecurrentImpl = "auto") -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.impl = check_impl(impl, RecurrentImpl)
        self.inputs = nn.ModuleList(
            nn.Linear(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )
        self.recurrent = nn.ParameterList(
            nn.Parameter(torch.rand(hidden_size)) for _ in range(num_layers)
        )  # u ~ U(0, 1)

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, I), h0 (L, B, H) or None for zeros -> (last layer's outputs (B, T, H), final states (L, B, H))."""
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"IndRNN expects input (batch, time, {self.input_size}), got {tuple(x.shape)}")
        expected = (self.num_layers, x.shape[0], self.hidden_size)
        if h0 is not None and tuple(h0.shape) != expected:
            raise ValueError(f"h0 must be (layers, batch, hidden) = {expected}, got {tuple(h0.shape)}")
        recur = indrnn_reference if self.impl == "reference" else indrnn_fused
        finals = []
        for k, (linear, u) in enumerate(zip(cast(list[nn.Linear], list(self.inputs)), self.recurrent)):
            start = x.new_zeros(x.shape[0], self.hidden_size) if h0 is None else h0[k]
            x = recur(F.linear(x, linear.weight, linear.bias), u, start)  # (B, T, H)
            finals.append(x[:, -1])
        return x, torch.stack(finals)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, impl={self.impl!r}"
