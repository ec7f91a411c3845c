"""Recurrent cells: one time step each, as ``nn.Module`` s that own their weights.

The step functions they call, written as the textbook equations, are in :mod:`rnnvision.ops.cells`.
Parameter names and layouts follow ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` (gate blocks
stacked along dim 0 of the weights), so weights move freely between these cells, the sequence
layers and ``torch.nn``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.ops.cells import GateDict, gru_step, lstm_step, rnn_step


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
    """LSTM cell with input, forget and output gates; see :func:`rnnvision.ops.cells.lstm_step` for the equations."""

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
    """GRU cell with reset and update gates; see :func:`rnnvision.ops.cells.gru_step` for the equations."""

    gate_blocks = 3

    def forward(
        self, x: Tensor, h: Tensor | None = None, *, return_gates: bool = False
    ) -> Tensor | tuple[Tensor, GateDict]:
        """x (B, I), h (B, H) or None -> h' (B, H), plus the gates if asked."""
        h = self._zeros(x) if h is None else h
        x_proj = F.linear(x, self.weight_ih, self.bias_ih)
        h, gates = gru_step(x_proj, h, self.weight_hh, self.bias_hh)
        return (h, gates) if return_gates else h
