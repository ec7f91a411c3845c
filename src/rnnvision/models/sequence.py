"""Sequence models of the long-range lab: ``sequence_regressor`` and ``sequence_tagger``.

Both read a sequence (B, T, F) (the ``adding`` and ``copy-memory`` datasets) with one of five
recurrences, chosen by ``cell``, and differ only in their head:

- ``rnn``, ``lstm``, ``gru``: the sequence layers of :mod:`rnnvision.layers.recurrent`
  (``num_layers`` stacked, fused kernels), ``gate_init="chrono"`` for LSTM and GRU with
  T_max = ``seq_len`` (Tallec & Ollivier 2018);
- ``mingru``: :class:`~rnnvision.layers.minrnn.MinRNNStack`, ``num_layers`` pre-norm residual
  minGRU blocks with an MLP (Feng et al. 2024);
- ``indrnn``: :class:`~rnnvision.layers.indrnn.IndRNN`, ``num_layers`` stacked IndRNN layers
  (Li et al. 2018; one recurrent weight per unit, ReLU);
- ``lru``: a linear encoder, ``num_layers`` of pixel_lru's :class:`~rnnvision.models.lru.LRUBlock`
  (LRU with ``hidden_size`` complex states, GELU, GLU, residual; Orvieto et al. 2023), a LayerNorm.
  A single LRU is linear in its input and cannot multiply a value by its marker: the blocks'
  position-wise nonlinearity is part of the model, as in the paper.

``sequence_regressor`` maps the last step's features to ``num_outputs`` values;
``sequence_tagger`` maps every step's features to ``num_classes`` scores. ``in_features``,
``num_outputs`` / ``num_classes`` and ``seq_len`` come from the dataset unless the config sets them;
``seq_len`` (the sequence length) is T_max of the chrono initialisation and the length of
``example_inputs``; the models read sequences of any length. ``to_sequence`` (the
identity) and ``forward_sequence`` make them sequence models for ``rnnvision gradflow``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from rnnvision.layers.indrnn import IndRNN
from rnnvision.layers.minrnn import MinRNNStack
from rnnvision.layers.recurrent import RECURRENT_LAYERS, GateInit, make_recurrent
from rnnvision.models.interface import recurrence_gate_names, recurrence_gates
from rnnvision.models.lru import LRUBlock
from rnnvision.models.registry import register_model

Cell = Literal["rnn", "lstm", "gru", "mingru", "indrnn", "lru"]
CELLS = ("rnn", "lstm", "gru", "mingru", "indrnn", "lru")


class LRUStack(nn.Module):
    """Linear encoder, ``depth`` :class:`LRUBlock` s, LayerNorm: (B, T, F) -> ((B, T, D), None).

    The ring initialisation of pixel_lru (r in [0.9, 0.999], phase up to pi).
    """

    def __init__(self, input_size: int, dim: int, depth: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(input_size, dim)
        self.blocks = nn.Sequential(
            *(
                LRUBlock(
                    dim, dim, r_min=0.9, r_max=0.999, max_phase=math.pi, bidirectional=False, dropout=0.0, impl="auto"
                )
                for _ in range(depth)
            )
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, None]:
        return self.norm(self.blocks(self.encoder(x))), None  # (B, T, D)


def make_sequence_layer(
    cell: str, input_size: int, hidden_size: int, num_layers: int, *, gate_init: GateInit, seq_len: int
) -> nn.Module:
    """The recurrence of ``cell``: a module mapping (B, T, F) to ``(features (B, T, hidden_size), state)``."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
    if num_layers < 1 or hidden_size < 1:
        raise ValueError(f"num_layers and hidden_size must be at least 1, got {num_layers}, {hidden_size}")
    if cell in RECURRENT_LAYERS:
        return make_recurrent(
            cell, input_size, hidden_size, num_layers=num_layers, gate_init=gate_init, chrono_max=seq_len
        )
    if gate_init != "default":
        raise ValueError(f"gate_init={gate_init!r} sets LSTM and GRU gate biases; cell {cell!r} has none")
    if cell == "mingru":
        return MinRNNStack(input_size, hidden_size, num_layers, cell="mingru")
    if cell == "indrnn":
        return IndRNN(input_size, hidden_size, num_layers)
    return LRUStack(input_size, hidden_size, num_layers)


class SequenceModel(nn.Module):
    """A recurrence (``self.rnn``) over (B, T, F) and a linear ``head``; subclasses pick which steps it reads."""

    def __init__(
        self,
        *,
        cell: str,
        in_features: int,
        out_features: int,
        hidden_size: int,
        num_layers: int,
        gate_init: GateInit,
        seq_len: int,
    ) -> None:
        super().__init__()
        self.cell, self.in_features, self.seq_len = cell, in_features, seq_len
        self.rnn = make_sequence_layer(cell, in_features, hidden_size, num_layers, gate_init=gate_init, seq_len=seq_len)
        self.head = nn.Linear(hidden_size, out_features)

    def features(self, seq: Tensor) -> Tensor:
        """(B, T, F) -> (B, T, H): the last layer's output at every step."""
        return self.rnn(seq)[0]

    def to_sequence(self, x: Tensor) -> Tensor:
        """The input is already the sequence (B, T, F)."""
        return x

    def forward_sequence(self, seq: Tensor) -> Tensor:
        return self(seq)

    def gate_names(self) -> tuple[str, ...]:
        """The gates of an LSTM or GRU recurrence; ``()`` for the other cells."""
        return recurrence_gate_names(self.rnn)

    def sequence_gates(self, seq: Tensor) -> dict[str, Tensor]:
        """Every gate at every step of ``seq`` (B, T, F): name -> (L, 1, B, T, H) (LSTM and GRU only)."""
        return recurrence_gates(self.rnn, seq)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor]:
        """A random batch (B, seq_len, in_features), for tests."""
        return (torch.rand(batch_size, self.seq_len, self.in_features),)


class SequenceRegressor(SequenceModel):
    """(B, T, F) -> (B, num_outputs) from the features of the last step."""

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)[:, -1])


class SequenceTagger(SequenceModel):
    """(B, T, F) -> (B, T, num_classes) scores at every step."""

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


_TINY = {"hidden_size": 6, "seq_len": 7}


@register_model(task="regress", tiny={**_TINY, "in_features": 2})
def sequence_regressor(
    *,
    cell: Cell = "lstm",
    in_features: int = 2,
    num_outputs: int = 1,
    hidden_size: int = 128,
    num_layers: int = 1,
    gate_init: GateInit = "default",
    seq_len: int = 100,
) -> SequenceRegressor:
    """A recurrence over a sequence -> a value from its last step (the adding problem); ``cell`` picks it."""
    return SequenceRegressor(
        cell=cell,
        in_features=in_features,
        out_features=num_outputs,
        hidden_size=hidden_size,
        num_layers=num_layers,
        gate_init=gate_init,
        seq_len=seq_len,
    )


@register_model(task="tag", tiny={**_TINY, "in_features": 10, "num_classes": 9})
def sequence_tagger(
    *,
    cell: Cell = "lstm",
    in_features: int = 10,
    num_classes: int = 9,
    hidden_size: int = 128,
    num_layers: int = 1,
    gate_init: GateInit = "default",
    seq_len: int = 120,
) -> SequenceTagger:
    """A recurrence over a sequence -> class scores at every step (copy-memory); ``cell`` picks it."""
    return SequenceTagger(
        cell=cell,
        in_features=in_features,
        out_features=num_classes,
        hidden_size=hidden_size,
        num_layers=num_layers,
        gate_init=gate_init,
        seq_len=seq_len,
    )
