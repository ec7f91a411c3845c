"""Autoregressive image models: exact likelihood, sampling and completion, pixel by pixel.

An image model here factorises ``p(x) = prod_i p(x_i | x_<i)`` over the pixels in raster order
(rows top to bottom, each row left to right) and, within a pixel, over the colour channels
R -> G -> B (van den Oord et al. 2016, eq. 1-2). One forward pass gives every conditional at
once, because the network is causal; generation is sequential.

Two ways to step through the pixels (``method``):

- ``"naive"``: run the whole network on the current canvas for every pixel and channel and read
  the logits there. Correct for any causal network; the reference.
- ``"incremental"``: carry each recurrent layer's state along the rows (the layer's stepping in
  :mod:`rnnvision.layers.pixelrnn`), so every pixel costs one cell step per layer.
- ``"auto"``: incremental when every layer has a stepping, else naive.

Pixel values are floats in [0, 1]: {0, 1} for binary images (Bernoulli head, ``levels=2``) and
``k / (levels - 1)`` for ``levels``-valued images (softmax head, e.g. 256 for 8-bit images).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.layers.pixelrnn import DiagonalBiLSTM, DiagonalBiLSTMStepping, MaskedConv2d, RowLSTM, RowLSTMStepping

METHODS = ("auto", "incremental", "naive")
STEPPING = {RowLSTM: RowLSTMStepping, DiagonalBiLSTM: DiagonalBiLSTMStepping}
ImageSize = int | tuple[int, int]
State = tuple[Tensor, ...]  # one body layer's stepping state
PixelLogits = Callable[[Tensor, int, int], Tensor]  # (canvas, row, column) -> that pixel's logits
EndRow = Callable[[], None]


def pixel_log_probs(logits: Tensor, x: Tensor, levels: int) -> Tensor:
    """log p(x_i | x_<i) of every channel of every pixel, in nats: (B, C, H, W).

    ``logits`` are (B, C, H, W) for ``levels == 2`` and (B, levels, C, H, W) otherwise; ``x`` is
    (B, C, H, W) in [0, 1]. Any trailing shape works alike, e.g. logits (B,) or (B, L) for one value.
    """
    if levels == 2:
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    targets = (x * (levels - 1)).round().long()
    return -F.cross_entropy(logits, targets, reduction="none")


def _draw(logits: Tensor, levels: int, generator: torch.Generator | None) -> Tensor:
    """Sample one value in [0, 1] per row of ``logits``: (B,) for binary, (B, levels) otherwise -> (B,)."""
    if levels == 2:
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
        return (u < torch.sigmoid(logits)).to(logits.dtype)
    index = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
    return index.to(logits.dtype) / (levels - 1)


class AutoregressiveImageModel(nn.Module):
    """Masked 7 x 7 (mask A) stem -> causal body layers -> ReLU, 1 x 1 -> ReLU, 1 x 1 head (mask B).

    Subclasses provide ``body`` (a ``ModuleList`` of causal (B, 2h, H, W) -> (B, 2h, H, W) layers).
    ``forward`` maps (B, C, H, W) images of any size to logits on the same grid: (B, C, H, W) for
    binary images, (B, levels, C, H, W) otherwise.
    """

    def __init__(
        self, *, in_chans: int, levels: int, img_size: ImageSize, channels: int, out_hidden: int, body: nn.ModuleList
    ) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 (grey or binary) or 3 (RGB), got {in_chans}")
        if levels < 2:
            raise ValueError(f"levels must be at least 2 (2 = binary images, 256 = 8-bit), got {levels}")
        if channels < in_chans or out_hidden < in_chans:
            raise ValueError(f"hidden sizes must be at least in_chans={in_chans} to split the colour channels")
        self.in_chans, self.levels = in_chans, levels
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        outputs = in_chans if levels == 2 else in_chans * levels
        self.stem = MaskedConv2d(in_chans, channels, 7, mask_type="A", colors=in_chans)
        self.body = body
        # each recurrent body layer's stepping, built once (not per pixel); empty without recurrence
        self._steppings: list[RowLSTMStepping | DiagonalBiLSTMStepping] = (
            [STEPPING[type(layer)](layer) for layer in body] if all(type(layer) in STEPPING for layer in body) else []
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, out_hidden, 1, mask_type="B", colors=in_chans),
            nn.ReLU(),
            MaskedConv2d(out_hidden, outputs, 1, mask_type="B", colors=in_chans),
        )

    # -- one pass ---------------------------------------------------------------------------------
    def _check_images(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"expected images of shape (B, {self.in_chans}, H, W), got {tuple(x.shape)}")

    def _layout(self, raw: Tensor) -> Tensor:
        """Head output (B, C * L, ...) -> logits (B, C, ...) for binary or (B, L, C, ...)."""
        if self.levels == 2:
            return raw
        logits = raw.unflatten(1, (self.in_chans, self.levels))  # (B, C, L, ...): channel-major, as the mask groups
        return logits.transpose(1, 2)  # (B, L, C, ...)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> per-pixel logits, (B, C, H, W) or (B, levels, C, H, W)."""
        self._check_images(x)
        features = self.stem(x)  # (B, 2h, H, W)
        for layer in self.body:
            features = layer(features)
        return self._layout(self.head(features))

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-likelihood of each image in nats, (B,), from one forward pass."""
        return pixel_log_probs(self(x), x, self.levels).flatten(1).sum(dim=1)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor]:
        """A random batch of valid images of this model's size, for tests."""
        values = torch.randint(0, self.levels, (batch_size, self.in_chans, *self.img_size))
        return (values.float() / (self.levels - 1),)

    # -- step by step -----------------------------------------------------------------------------
    def has_incremental(self) -> bool:
        return all(type(layer) in STEPPING for layer in self.body)

    def _resolve_method(self, method: str) -> str:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "auto":
            return "incremental" if self.has_incremental() else "naive"
        if method == "incremental" and not self.has_incremental():
            raise ValueError(f"{type(self).__name__} has no recurrent state to carry; use method='naive'")
        return method

    def start_stepping(self, batch: int, width: int, like: Tensor) -> list[State]:
        """The state of every body layer before the first row (zeros), for :meth:`pixel_step`."""
        return [stepping.start(batch, width, like) for stepping in self._steppings]

    def pixel_step(self, window: Tensor, col: Tensor, states: list[State]) -> tuple[Tensor, list[State]]:
        """Logits of one pixel from the stem's window on the canvas around it, (B, C, k, k) with k the
        stem's kernel (zero outside the image), its column ``col`` (0-d int64) and the layers'
        states -> (logits (B, C) or (B, L, C), new states). Traceable (ONNX sampling graph)."""
        features = self.stem.at(window)  # (B, 2h)
        new_states = []
        for stepping, state in zip(self._steppings, states):
            features, state = stepping.step(features, col, state)
            new_states.append(state)
        return self._layout(self.head(features[:, :, None, None])[:, :, 0, 0]), new_states

    def end_row(self, states: list[State]) -> list[State]:
        """The layers' states once a row is complete, ready for the next row."""
        return [stepping.end_row(state) for stepping, state in zip(self._steppings, states)]

    def _pixel_logits_fn(self, method: str, batch: int, width: int, like: Tensor) -> tuple[PixelLogits, EndRow]:
        """(logits(canvas, r, c) -> (B, C) or (B, L, C), end_row()) for ``method``."""
        if method == "naive":
            return (lambda canvas, r, c: self(canvas)[..., r, c]), (lambda: None)
        return stepping_fns(
            self.pixel_step, self.end_row, self.start_stepping(batch, width, like), self.stem.kernel_size[0]
        )

    @torch.no_grad()
    def autoregress(
        self, canvas: Tensor, known: Tensor, *, method: str = "auto", generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Visit every channel of every pixel in order; keep it where ``known``, else sample it.

        Args:
            canvas: (B, C, H, W) values in [0, 1]; only the ``known`` entries are read, each when
                its turn comes (the network never sees a later pixel, whatever its causality).
            known: bool, broadcastable to ``canvas``.
            method: ``"auto"``, ``"incremental"`` or ``"naive"`` (see the module docstring).
            generator: the random stream for the samples.

        Returns:
            (images (B, C, H, W), log p of each chosen value given all earlier ones (B, C, H, W)).
        """
        self._check_images(canvas)
        method = self._resolve_method(method)
        was_training = self.training
        self.eval()
        try:
            pixel_logits, end_row = self._pixel_logits_fn(method, canvas.shape[0], canvas.shape[3], canvas)
            return raster_autoregress(pixel_logits, end_row, canvas, known, levels=self.levels, generator=generator)
        finally:
            self.train(was_training)

    def conditionals(self, x: Tensor, *, method: str = "auto") -> Tensor:
        """log p(x_i | x_<i) of every channel of every pixel computed step by step: (B, C, H, W)."""
        return self.autoregress(x, torch.ones_like(x, dtype=torch.bool), method=method)[1]

    def sample(
        self, n: int, *, size: ImageSize | None = None, method: str = "auto", generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` new images, (n, C, H, W) in [0, 1]; ``size`` defaults to the training size."""
        if n < 1:
            raise ValueError(f"the number of samples must be at least 1, got {n}")
        height, width = self.img_size if size is None else ((size, size) if isinstance(size, int) else size)
        if height < 1 or width < 1:
            raise ValueError(f"the image size must be positive, got {height} x {width}")
        weight = self.stem.weight
        canvas = torch.zeros(n, self.in_chans, height, width, device=weight.device, dtype=weight.dtype)
        return self.autoregress(canvas, torch.zeros_like(canvas, dtype=torch.bool), method=method, generator=generator)[
            0
        ]

    def complete(
        self, images: Tensor, known_mask: Tensor, *, method: str = "auto", generator: torch.Generator | None = None
    ) -> Tensor:
        """Fill the pixels where ``known_mask`` is False, each sampled given every pixel before it.

        ``images`` (B, C, H, W) in [0, 1]; ``known_mask`` bool, broadcastable to it (e.g. (B, 1, H, W)
        or (H, W)). A sampled pixel is conditioned on the pixels before it in raster order only, so
        masking the bottom rows (the usual image completion) uses everything that is known.
        """
        return self.autoregress(images, known_mask, method=method, generator=generator)[0]


def stepping_fns(
    pixel_step: Callable[[Tensor, Tensor, list[State]], tuple[Tensor, list[State]]],
    end_row: Callable[[list[State]], list[State]],
    states: list[State],
    kernel: int,
) -> tuple[PixelLogits, EndRow]:
    """The (logits(canvas, r, c), end_row()) pair of :func:`raster_autoregress` over a stepping model:
    ``pixel_step`` and ``end_row`` as :meth:`AutoregressiveImageModel.pixel_step` and ``.end_row``
    (the model's, or its exported ONNX graphs'), carrying ``states`` from pixel to pixel."""
    pad = kernel // 2
    carried = [states]

    def logits(canvas: Tensor, r: int, c: int) -> Tensor:
        window = F.pad(canvas, (pad, pad, pad, pad))[:, :, r : r + kernel, c : c + kernel]  # (B, C, k, k)
        out, carried[0] = pixel_step(window, torch.tensor(c), carried[0])
        return out

    def next_row() -> None:
        carried[0] = end_row(carried[0])

    return logits, next_row


def raster_autoregress(
    pixel_logits: PixelLogits,
    end_row: EndRow,
    source: Tensor,
    known: Tensor,
    *,
    levels: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """The loop of :meth:`AutoregressiveImageModel.autoregress` over any ``pixel_logits``/``end_row``."""
    known = torch.broadcast_to(known.to(torch.bool), source.shape)
    canvas = torch.zeros_like(source)  # filled in order: no later pixel is ever on it, known or not
    log_probs = torch.zeros_like(source)
    _, channels, height, width = canvas.shape
    for r in range(height):
        for c in range(width):
            for k in range(channels):
                logits = pixel_logits(canvas, r, c)[..., k]  # (B,) or (B, L)
                value = torch.where(known[:, k, r, c], source[:, k, r, c], _draw(logits, levels, generator))
                canvas[:, k, r, c] = value
                log_probs[:, k, r, c] = pixel_log_probs(logits, value, levels)
        end_row()
    return canvas, log_probs


def nats_to_bits_per_dim(nats: float, dims: int) -> float:
    """Negative log-likelihood of one image in nats -> bits per sub-pixel."""
    return nats / (dims * math.log(2))
