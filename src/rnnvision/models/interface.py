"""What tasks, the engine and the server may ask of a model besides calling it.

They never look inside a model (``model.rnn``, its reader): a model that reads an image as a
sequence says so through these names, defined on the model classes.

- ``reading_order`` (:class:`~rnnvision.models.classifier.ReadingClassifier`): how the image
  becomes a sequence, one of :data:`ReadingOrder`.
- ``gate_names()``: the gates the model can report, ``()`` for none (:class:`HasGates`).
- ``sequence_gates(seq)``: every gate at every step of the sequence (B, T, F) the model reads:
  name -> (L, D, B, T, H), L layers and D directions of its recurrence.
- ``gates(images)`` and ``record_gates()``: the same from images, and the first layer's gates of
  each forward pass while a ``with`` block runs (:class:`GateRecord`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from torch import Tensor, nn

ReadingOrder = Literal["rows", "columns", "pixels"]


@runtime_checkable
class HasGates(Protocol):
    """A model whose recurrence can report its gate activations."""

    def gate_names(self) -> tuple[str, ...]: ...

    def sequence_gates(self, seq: Tensor) -> dict[str, Tensor]: ...


@dataclass(frozen=True)
class GateRecord:
    """One forward pass as :meth:`ReadingClassifier.record_gates` saw it.

    Attributes:
        gates: the first layer's forward-direction gates, name -> (B, T, H).
        step_logits: (B, T, K) the class scores had the sequence ended after each step; None for
            a bidirectional recurrence (its steps see the whole sequence).
    """

    gates: dict[str, Tensor]
    step_logits: Tensor | None


def recurrence_gate_names(rnn: nn.Module) -> tuple[str, ...]:
    """The gates of a recurrent layer of :mod:`rnnvision.layers.recurrent` (``()`` for any other)."""
    return tuple(getattr(rnn, "gate_names", ()))


def recurrence_gates(rnn: nn.Module, seq: Tensor) -> dict[str, Tensor]:
    """Every gate of ``rnn`` over ``seq`` (B, T, F): name -> (L, D, B, T, H); ``ValueError`` without gates."""
    if not recurrence_gate_names(rnn):
        raise ValueError(f"{type(rnn).__name__} has no gates to return")
    _, _, gates = rnn(seq, return_gates=True)
    return gates
