"""Image classifiers that read an image as a sequence: row by row or pixel by pixel.

The textbook recipe: a recurrent layer reads the image one row (or one pixel) per step, its final
hidden state — both directions' for a bidirectional layer — goes through dense layers, and a
softmax over the classes gives the prediction (the softmax lives in the loss). Pixel-by-pixel
reading is the sequential-MNIST benchmark of Le et al. 2015; with a fixed permutation of the
pixels it is permuted MNIST.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any, TypedDict

import torch
from torch import Tensor, nn
from typing_extensions import Unpack

from rnnvision.impl import RecurrentImpl
from rnnvision.layers.recurrent import GateInit, make_recurrent
from rnnvision.models.interface import GateRecord, ReadingOrder, recurrence_gate_names, recurrence_gates
from rnnvision.models.registry import register_model
from rnnvision.ops.sequences import image_to_pixels, image_to_sequence, pixel_permutation, sequence_shape
from rnnvision.options import Default, with_defaults

ImageSize = int | tuple[int, int]


def _pair(size: ImageSize) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class ImageClassifier(nn.Module):
    """What image classifiers share: ``forward_features`` (their own) -> ``head`` -> logits."""

    in_chans: int
    img_size: tuple[int, int]
    head: nn.Module

    def forward_features(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, features: Tensor) -> Tensor:
        """(B, D) -> (B, num_classes) logits."""
        return self.head(features)

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_classes) logits."""
        return self.forward_head(self.forward_features(images))

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor]:
        """A random batch of the shape this model takes, for tests."""
        return (torch.rand(batch_size, self.in_chans, *self.img_size),)


class ReadingClassifier(ImageClassifier):
    """An image classifier that reads the image as a sequence: ``to_sequence`` then ``sequence_features``.

    ``to_sequence`` and ``forward_sequence`` let ``rnnvision gradflow`` differentiate by step;
    ``reading_order``, ``gate_names``, ``gates`` and ``record_gates`` are what tasks and the server
    may ask of it (:mod:`rnnvision.models.interface`). Without a gated recurrence it has no gates.
    """

    reading_order: ReadingOrder

    @property
    def recurrence_name(self) -> str:
        """The name of the recurrence, for the titles of pictures."""
        return type(self).__name__

    def gate_names(self) -> tuple[str, ...]:
        """The gates :meth:`sequence_gates` reports, ``()`` for none."""
        return ()

    def sequence_gates(self, seq: Tensor) -> dict[str, Tensor]:
        """Every gate at every step of ``seq`` (B, T, F): name -> (L, D, B, T, H)."""
        raise ValueError(f"{type(self).__name__} has no gates to return")

    def gates(self, images: Tensor) -> dict[str, Tensor]:
        """Every gate at every step of the images (B, C, H, W) read in this model's order: name -> (L, D, B, T, H)."""
        return self.sequence_gates(self.to_sequence(images))

    def record_gates(self) -> AbstractContextManager[list[GateRecord]]:
        """While the ``with`` block runs, a :class:`GateRecord` of each forward pass, in a list."""
        raise ValueError(f"{type(self).__name__} has no gates to record")

    def to_sequence(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def sequence_features(self, seq: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_sequence(self, seq: Tensor) -> Tensor:
        """(B, T, F) sequence, as :meth:`to_sequence` gives -> (B, num_classes) logits."""
        return self.forward_head(self.sequence_features(seq))

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D)."""
        return self.sequence_features(self.to_sequence(images))


class PixelClassifier(ReadingClassifier):
    """An image classifier that reads the pixels one at a time, in raster or a fixed seeded order.

    Subclasses call :meth:`_init_reader` and provide ``sequence_features`` ((B, H*W, C) -> (B, D)).
    """

    def _init_reader(
        self, *, num_classes: int, in_chans: int, img_size: ImageSize, pool: str, permutation_seed: int | None
    ) -> None:
        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}")
        self.in_chans, self.img_size, self.num_classes, self.pool = in_chans, _pair(img_size), num_classes, pool
        self.reading_order = "pixels"
        steps = self.img_size[0] * self.img_size[1]
        if permutation_seed is None:
            self.permutation = None
        else:
            self.register_buffer("permutation", pixel_permutation(steps, permutation_seed))

    def to_sequence(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, H*W, C) in this model's reading order."""
        return image_to_pixels(images, self.permutation)


class SequenceClassifier(ReadingClassifier):
    """Recurrent layer over an image read as a sequence, then an MLP head.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        reader: ``"rows"``, ``"columns"`` or ``"pixels"`` (see :mod:`rnnvision.ops.sequences`).
        permutation_seed: with ``reader="pixels"``, read the pixels in a fixed seeded order.
        head_hidden: width of the dense layer before the class scores (0: a single linear layer).
        gate_init: ``"default"`` or ``"chrono"`` gate biases, the latter with time scales up to the
            number of steps (see :mod:`rnnvision.layers.recurrent`).
    """

    def __init__(
        self,
        *,
        cell: str,
        reader: ReadingOrder,
        num_classes: int,
        in_chans: int,
        img_size: ImageSize,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        head_hidden: int = 0,
        permutation_seed: int | None = None,
        impl: RecurrentImpl = "auto",
        gate_init: GateInit = "default",
    ) -> None:
        super().__init__()
        height, width = _pair(img_size)
        self.in_chans, self.img_size, self.num_classes = in_chans, (height, width), num_classes
        self.reading_order = reader
        steps, features = sequence_shape(reader, in_chans, height, width)
        self.steps = steps
        if permutation_seed is not None:
            if reader != "pixels":
                raise ValueError("permutation_seed needs reader='pixels'")
            self.register_buffer("permutation", pixel_permutation(steps, permutation_seed))
        else:
            self.permutation = None
        self.rnn = make_recurrent(
            cell,
            features,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
            impl=impl,
            gate_init=gate_init,
            chrono_max=steps,
        )
        out_features = hidden_size * (2 if bidirectional else 1)
        if head_hidden:
            self.head = nn.Sequential(
                nn.Linear(out_features, head_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(head_hidden, num_classes),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(out_features, num_classes))

    def to_sequence(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, T, F) in this model's reading order."""
        return image_to_sequence(images, self.reading_order, permutation=self.permutation)

    def sequence_features(self, seq: Tensor) -> Tensor:
        """(B, T, F) -> (B, D*H): the last layer's final hidden state, both directions."""
        _, state = self.rnn(seq)
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(h_n[-directions:]), dim=-1)  # (B, D*H)

    @property
    def recurrence_name(self) -> str:
        """``"RNN"``, ``"LSTM"`` or ``"GRU"``."""
        return type(self.rnn).__name__

    def gate_names(self) -> tuple[str, ...]:
        """The LSTM's or GRU's gates; ``()`` for the Elman RNN."""
        return recurrence_gate_names(self.rnn)

    def sequence_gates(self, seq: Tensor) -> dict[str, Tensor]:
        """Every gate activation at every step of ``seq`` (B, T, F): name -> (L, D, B, T, H) (LSTM and GRU only)."""
        return recurrence_gates(self.rnn, seq)

    @contextmanager
    def record_gates(self) -> Iterator[list[GateRecord]]:
        """While the ``with`` block runs, each forward pass's first-layer gates (computed at once
        from the recurrence's inputs and outputs, :meth:`~rnnvision.layers.recurrent.LSTM.first_layer_gates`)
        and, unidirectional, the class scores after each step."""
        if not self.gate_names():
            raise ValueError(f"{self.recurrence_name} has no gates to record")
        records: list[GateRecord] = []

        def record(_: nn.Module, inputs: tuple[Any, ...], output: tuple[Tensor, Any]) -> None:
            seq, outputs = inputs[0], output[0]  # (B, T, F) in, (B, T, D*H) out
            with torch.no_grad():
                step_logits = None if self.rnn.bidirectional else self.forward_head(outputs)  # (B, T, K)
                records.append(GateRecord(self.rnn.first_layer_gates(seq, outputs), step_logits))

        handle = self.rnn.register_forward_hook(record)
        try:
            yield records
        finally:
            handle.remove()


class ReaderOptions(TypedDict, total=False):
    """The options every builder of this module takes, with their defaults (MNIST's classes, channels, size)."""

    num_classes: Annotated[int, Default(10)]
    in_chans: Annotated[int, Default(1)]
    img_size: Annotated[ImageSize, Default(28)]
    hidden_size: Annotated[int, Default(128)]
    impl: Annotated[RecurrentImpl, Default("auto")]


def _sequence_classifier(cell: str, reader: ReadingOrder, shared: ReaderOptions, **own: Any) -> SequenceClassifier:
    return SequenceClassifier(cell=cell, reader=reader, **with_defaults(ReaderOptions, shared), **own)


_TINY = {"hidden_size": 8, "img_size": 8}


@register_model(task="classify", tiny=_TINY)
def row_rnn(*, dropout: float = 0.0, **options: Unpack[ReaderOptions]) -> SequenceClassifier:
    """Elman RNN (tanh) over image rows -> linear classifier."""
    return _sequence_classifier("rnn", "rows", options, dropout=dropout)


@register_model(task="classify", tiny=_TINY)
def row_gru(*, head_hidden: int = 64, dropout: float = 0.1, **options: Unpack[ReaderOptions]) -> SequenceClassifier:
    """GRU over image rows -> dense layers."""
    return _sequence_classifier("gru", "rows", options, head_hidden=head_hidden, dropout=dropout)


@register_model(task="classify", tiny=_TINY)
def row_lstm(*, head_hidden: int = 64, dropout: float = 0.1, **options: Unpack[ReaderOptions]) -> SequenceClassifier:
    """LSTM over image rows -> dense layers -> softmax: the textbook example."""
    return _sequence_classifier("lstm", "rows", options, head_hidden=head_hidden, dropout=dropout)


@register_model(task="classify", tiny=_TINY)
def row_bilstm(
    *, num_layers: int = 2, head_hidden: int = 128, dropout: float = 0.2, **options: Unpack[ReaderOptions]
) -> SequenceClassifier:
    """2-layer bidirectional LSTM over image rows -> dense layers."""
    return _sequence_classifier(
        "lstm", "rows", options, num_layers=num_layers, bidirectional=True, head_hidden=head_hidden, dropout=dropout
    )


@register_model(task="classify", tiny=_TINY)
def pixel_lstm(
    *,
    permutation_seed: int | None = None,
    dropout: float = 0.0,
    gate_init: GateInit = "default",
    **options: Unpack[ReaderOptions],
) -> SequenceClassifier:
    """LSTM over the pixels one at a time (sequential MNIST); ``permutation_seed`` for permuted MNIST."""
    return _sequence_classifier(
        "lstm", "pixels", options, permutation_seed=permutation_seed, dropout=dropout, gate_init=gate_init
    )


@register_model(task="classify", tiny=_TINY)
def pixel_gru(
    *,
    permutation_seed: int | None = None,
    dropout: float = 0.0,
    gate_init: GateInit = "default",
    **options: Unpack[ReaderOptions],
) -> SequenceClassifier:
    """GRU over the pixels one at a time; ``permutation_seed`` for permuted MNIST."""
    return _sequence_classifier(
        "gru", "pixels", options, permutation_seed=permutation_seed, dropout=dropout, gate_init=gate_init
    )
