"""The IndRNN recurrence (Li et al. 2018, CVPR, section 3): its reference loop and its fused form.

``h_t = relu(drive_t + u * h_{t-1})`` with ``drive_t = W x_t + b`` computed by the layer
(:class:`rnnvision.layers.indrnn.IndRNN`) for every step at once and ``u`` one recurrent weight
per unit. :func:`indrnn_reference` is the loop with autograd recording every step (the
specification); :func:`indrnn_fused` runs the same loop inside one autograd function that keeps
only the outputs (B, T, H) for the backward, which it computes by the loop written out::

    d_t = (dL/dh_t + u * d_{t+1}) * [pre_t > 0]      pre_t = drive_t + u * h_{t-1}, d_{T+1} = 0
    dL/d(drive_t) = d_t,  dL/du = sum_t d_t * h_{t-1},  dL/dh_0 = u * d_1

Both give the same outputs and gradients (tests/layers/test_indrnn.py, float64).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


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
