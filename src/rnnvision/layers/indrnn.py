"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN", CVPR).

Each unit has one recurrent weight of its own instead of a row of a matrix (section 3)::

    h_t = relu(W x_t + b + u * h_{t-1})          W (H, I), b (H,), u (H,); * is elementwise

so the gradient reaching step t through a unit is a product of its own ``u`` and ReLU slopes,
which the recurrent weights control directly (u = 1 carries a value unchanged for ever). Layers
stack (section 3.2): each layer's outputs are the next one's inputs. Initialisation here: u ~ U(0, 1)
(every unit starts stable, with memory times spread over the short and long ones), W and b as
``torch.nn.Linear``.

``impl="reference"`` is the loop above with autograd recording every step (the specification);
``"fused"`` (and ``"auto"``) runs the same loop inside one autograd function that keeps only the
outputs (B, T, H) instead of a graph of T steps with their intermediates, and computes the
backward by the loop written out::

    d_t = (dL/dh_t + u * d_{t+1}) * [pre_t > 0]      pre_t = W x_t + b + u * h_{t-1}, d_{T+1} = 0
    dL/d(W x_t + b) = d_t,  dL/du = sum_t d_t * h_{t-1},  dL/dh_0 = u * d_1

Both give the same outputs and gradients (tests/layers/test_indrnn.py, float64). The fused loop
keeps 12.1 MiB for the backward in 10 saved tensors where the reference's graph keeps 18.1 MiB in
6,002, and its training step took 0.5-0.8x the reference's time on one CPU thread (T = 1000,
batch 16, 98 units, 2 layers; ``benchmarks/bench_indrnn.py``, BENCHMARKS.md): each step is a few
small elementwise operations either way, so the Python loop still dominates. A compiled kernel
would be the fast path proper; not written.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import RecurrentImpl, check_impl


def indrnn_reference(drive: Tensor, u: Tensor, h0: Tensor) -> Tensor:
    """The loop: ``h_t = relu(drive_t + u * h_{t-1})``. drive (B, T, H) = W x + b, u (H,), h0 (B, H) -> (B, T, H)."""
    h, states = h0, []
    for d_t in drive.unbind(1):  # each (B, H)
        h = torch.relu(d_t + u * h)
        states.append(h)
    return torch.stack(states, dim=1)


def indrnn_fused(drive: Tensor, u: Tensor, h0: Tensor) -> Tensor:
    """The same recurrence with a hand-written backward; same contract as :func:`indrnn_reference`."""
    return _IndRNNFunction.apply(drive, u, h0)


class _IndRNNFunction(torch.autograd.Function):
    """One autograd node for the whole loop; it keeps only the outputs (B, T, H) for the backward."""

    @staticmethod
    def forward(ctx: Any, drive: Tensor, u: Tensor, h0: Tensor) -> Tensor:
        out = torch.empty_like(drive)  # (B, T, H)
        h = h0
        for t in range(drive.shape[1]):
            h = torch.relu(drive[:, t] + u * h)
            out[:, t] = h
        ctx.save_for_backward(u, h0, out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        u, h0, out = ctx.saved_tensors
        grad_drive = torch.empty_like(out)  # d_t, (B, T, H)
        carry = torch.zeros_like(h0)  # u * d_{t+1}
        for t in reversed(range(out.shape[1])):
            d_t = (grad_out[:, t] + carry) * (out[:, t] > 0)  # relu'(pre_t) = [h_t > 0]
            grad_drive[:, t] = d_t
            carry = u * d_t
        previous = torch.cat([h0[:, None], out[:, :-1]], dim=1)  # h_{t-1}, (B, T, H)
        grad_u = (grad_drive * previous).sum(dim=(0, 1))
        return grad_drive, grad_u, carry  # carry is now u * d_1 = dL/dh0


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
        self.inputs = nn.ModuleList(nn.Linear(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers))
        self.recurrent = nn.ParameterList(nn.Parameter(torch.rand(hidden_size)) for _ in range(num_layers))  # u ~ U(0, 1)

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
