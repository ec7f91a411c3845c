"""Cross-scan: an image read as four sequences, and the four read back onto the image.

The four orders of VMamba's cross-scan (Liu et al. 2024, "VMamba: Visual State Space Model"),
step t of each sequence holding one pixel's features:

=====  =====================  =============================================
order  name                   step t holds pixel (row, column)
=====  =====================  =============================================
0      row-major              (t // W, t % W)
1      column-major           (t % H, t // H)
2      row-major reversed     order 0 at step HW - 1 - t
3      column-major reversed  order 1 at step HW - 1 - t
=====  =====================  =============================================

:func:`cross_scan` folds the four sequences into the batch, order-major: (4B, HW, C) with rows
``k*B .. k*B + B - 1`` holding order k. :func:`cross_merge` lays each order's outputs back on
the pixel grid and sums them. A recurrence over the four sequences lets every pixel see every
other pixel: along its row, then its column, from both sides.
"""

from __future__ import annotations

import torch
from torch import Tensor

ORDERS = ("row-major", "column-major", "row-major reversed", "column-major reversed")


def cross_scan(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (4B, H*W, C): the four orders, order-major along the batch."""
    rows = x.flatten(2)  # (B, C, H*W), row-major
    columns = x.transpose(2, 3).flatten(2)  # (B, C, W*H), column-major
    seqs = torch.stack([rows, columns, rows.flip(-1), columns.flip(-1)])  # (4, B, C, HW)
    return seqs.flatten(0, 1).transpose(1, 2)  # (4B, HW, C)


def cross_unscan(seqs: Tensor, height: int, width: int) -> Tensor:
    """(4B, H*W, D) -> (4, B, D, H, W): each order's steps put back on the pixel grid."""
    four_b, steps, dim = seqs.shape
    if four_b % 4 or steps != height * width:
        raise ValueError(f"expected (4B, {height * width}, D) sequences, got {tuple(seqs.shape)}")
    y = seqs.transpose(1, 2).reshape(4, four_b // 4, dim, steps)  # (4, B, D, HW)
    forward = torch.cat([y[:2], y[2:].flip(-1)])  # (4, B, D, HW), reversed orders back in step order
    by_row = forward[0::2].unflatten(-1, (height, width))  # orders 0 and 2: (2, B, D, H, W)
    by_column = forward[1::2].unflatten(-1, (width, height)).transpose(-1, -2)  # orders 1 and 3
    return torch.stack([by_row[0], by_column[0], by_row[1], by_column[1]])  # (4, B, D, H, W)


def cross_merge(seqs: Tensor, height: int, width: int) -> Tensor:
    """(4B, H*W, D) -> (B, D, H, W): the four orders' outputs summed at every pixel."""
    return cross_unscan(seqs, height, width).sum(0)
