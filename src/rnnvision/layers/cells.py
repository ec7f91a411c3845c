"""Recurrent cells: one time step each, written as the textbook equations.

A cell does one step; the sequence layers in :mod:`rnnvision.layers.recurrent` drive the loop,
the directions and the stacking, and call the same step functions defined here for their
``impl="reference"`` path. Parameter names and layouts follow ``torch.nn.RNNCell`` /
``LSTMCell`` / ``GRUCell`` (gate blocks stacked along dim 0 of the weights), so weights move
freely between these cells, the sequence layers and ``torch.nn``.

Every step function takes the input term ``x_proj = W_ih x_t + b_ih`` already computed, because
it does not depend on the state and the layers compute it for all time steps in one matrix
multiply; the state-to-state term and the nonlinearities are applied here, per step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GateDict = dict[str, Tensor]

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("reset", "update", "candidate")


def rnn_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None, *, nonlinearity: str = "tanh") -> Tensor:
    """Elman step: ``h_t = tanh(W_hh h_{t-1} + b_hh + x_proj)`` (or relu).

    Shapes: x_proj (B, H), h (B, H), w_hh (H, H) -> h_t (B, H).
    """
    pre = x_proj + F.linear(h, w_hh, b_hh)
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(
    x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor, GateDict]:
    """LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate cell
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

    Shapes: x_proj (B, 4H) with blocks [i, f, g, o], h and c (B, H), w_hh (4H, H).
    Returns (h', c', gates) where gates maps input/forget/cell/output to (B, H).
    """
    pre = x_proj + F.linear(h, w_hh, b_hh)  # (B, 4H)
    i, f, g, o = pre.chunk(4, dim=1)  # each (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    h_next = o * torch.tanh(c_next)
    return h_next, c_next, {"input": i, "forget": f, "cell": g, "output": o}


def gru_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> tuple[Tensor, GateDict]:
    """GRU step (Cho et al. 2014), in the cuDNN/torch form where the reset gate scales W_hn h.

    r = σ(W_ir x + b_ir + W_hr h + b_hr)            reset gate
    z = σ(W_iz x + b_iz + W_hz h + b_hz)            update gate
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   candidate
    h' = (1 - z) ⊙ n + z ⊙ h

    Shapes: x_proj (B, 3H) with blocks [r, z, n], h (B, H), w_hh (3H, H).
    Returns (h', gates) where gates maps reset/update/candidate to (B, H).
    """
    x_r, x_z, x_n = x_proj.chunk(3, dim=1)  # each (B, H)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    h_next = (1 - z) * n + z * h
    return h_next, {"reset": r, "update": z, "candidate": n}


class _CellBase(nn.Module):
    """Holds ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` for ``gate_blocks`` blocks."""

    gate_blocks = 1

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.gate_blocks * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(rows)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(H), 1/sqrt(H)), as torch.nn does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_CellBase):
    """Elman cell: ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)`` (``nonlinearity="relu"`` optional).

    ``b_h`` is stored as two vectors (``bias_ih``, ``bias_hh``) whose sum is the textbook bias,
    so that the layout matches ``torch.nn.RNNCell`` and cuDNN.
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias=bias)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        """x (B, I), h (B, H) or None for zeros -> h_t (B, H)."""
        h = self._zeros(x) if h is None else h
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)
        return rnn_step(x_proj, h, self.weight_hh, self.bias_hh, nonlinearity=self.nonlinearity)


class LSTMCell(_CellBase):
    """LSTM cell with input, forget and output gates; see :func:`lstm_step` for the equations."""

    gate_blocks = 4

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None, *, return_gates: bool = False
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, GateDict]:
        """x (B, I), state (h, c) each (B, H) or None -> (h', c'), plus the gates if asked."""
        h, c = (self._zeros(x), self._zeros(x)) if state is None else state
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)
        h, c, gates = lstm_step(x_proj, h, c, self.weight_hh, self.bias_hh)
        return (h, c, gates) if return_gates else (h, c)


class GRUCell(_CellBase):
    """GRU cell with reset and update gates; see :func:`gru_step` for the equations."""

    gate_blocks = 3

    def forward(
        self, x: Tensor, h: Tensor | None = None, *, return_gates: bool = False
    ) -> Tensor | tuple[Tensor, GateDict]:
        """x (B, I), h (B, H) or None -> h' (B, H), plus the gates if asked."""
        h = self._zeros(x) if h is None else h
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)
        h, gates = gru_step(x_proj, h, self.weight_hh, self.bias_hh)
        return (h, gates) if return_gates else h
