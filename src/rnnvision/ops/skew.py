"""Skewing a map so that every diagonal becomes a column (PixelRNN's Diagonal BiLSTM, section 3.2).

van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks", section 3.2:
each row is offset one position to the right of the row above, so an (H, W) map becomes
(H, H + W - 1) and the pixels of one anti-diagonal ``r + c = t`` line up in column ``t``.
Unskewing removes the offsets again. Positions of the skewed map that hold no pixel are zero.

``skew`` and ``unskew`` are reshapes (no Python loop); ``skew_reference`` and
``unskew_reference`` spell out the index map ``skewed[r, r + c] = x[r, c]`` with loops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def skew(x: Tensor) -> Tensor:
    """(..., H, W) -> (..., H, H + W - 1) with ``out[..., r, r + c] = x[..., r, c]`` and zeros elsewhere.

    Row-major, pixel (r, c) of the skewed map sits at ``r * (H + W - 1) + r + c = r * (H + W) + c``,
    which is its index in the map padded on the right to width H + W: pad, flatten, cut, reshape.
    """
    height, width = x.shape[-2:]
    steps = height + width - 1
    padded = F.pad(x, (0, height))  # (..., H, W + H)
    flat = padded.flatten(-2)[..., : height * steps]  # (..., H * (H + W - 1))
    return flat.unflatten(-1, (height, steps))  # (..., H, H + W - 1)


def unskew(y: Tensor, width: int) -> Tensor:
    """(..., H, H + W - 1) -> (..., H, W): ``out[..., r, c] = y[..., r, r + c]`` (inverse of :func:`skew`)."""
    height, steps = y.shape[-2:]
    if steps != height + width - 1:
        raise ValueError(
            f"a skewed map of height {height} and width {width} has {height + width - 1} columns, got {steps}"
        )
    flat = F.pad(y.flatten(-2), (0, height))  # (..., H * (H + W))
    return flat.unflatten(-1, (height, height + width))[..., :width]  # (..., H, W)


def skew_reference(x: Tensor) -> Tensor:
    """Loop form of :func:`skew` (the specification)."""
    height, width = x.shape[-2:]
    out = x.new_zeros(*x.shape[:-2], height, height + width - 1)
    for r in range(height):
        for c in range(width):
            out[..., r, r + c] = x[..., r, c]
    return out


def unskew_reference(y: Tensor, width: int) -> Tensor:
    """Loop form of :func:`unskew` (the specification)."""
    height = y.shape[-2]
    out = y.new_zeros(*y.shape[:-2], height, width)
    for r in range(height):
        for c in range(width):
            out[..., r, c] = y[..., r, r + c]
    return out


def diagonal_order(height: int, width: int) -> tuple[Tensor, list[int]]:
    """The skewed map's on-image entries, column after column: the compact form of :func:`skew`.

    Returns ``(order, sizes)``: ``order`` (H * W,) int64 holds the raster index ``r * W + c`` of each
    pixel, taken by diagonal ``t = r + c`` (skewed column t) and, within it, by row; ``sizes[t]`` is
    the number of pixels on diagonal t (rows ``max(0, t - W + 1)`` to ``min(t, H - 1)``). So
    ``x.flatten(-2)[..., order]`` lists exactly the entries of ``skew(x)`` that lie on the image.
    """
    index, sizes = [], []
    for t in range(height + width - 1):
        rows = range(max(0, t - width + 1), min(t, height - 1) + 1)
        index += [r * width + (t - r) for r in rows]
        sizes.append(len(rows))
    return torch.tensor(index, dtype=torch.long), sizes
