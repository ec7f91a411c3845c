"""``ReNetLayer`` (Visin et al. 2015, "ReNet: A Recurrent Neural Network Based Alternative to
Convolutional Networks", section 2): two bidirectional recurrent sweeps over a grid of patches.

The image is cut into non-overlapping p x p patches, each flattened to a C*p*p vector. A
bidirectional RNN sweeps every column of patches top to bottom and bottom to top (vertical
sweep); a second bidirectional RNN sweeps every row of the result left to right and right to
left (horizontal sweep). Each output position thus sees the whole image.

The fast path folds all columns of all images into one batch, so the vertical sweep is one
call of the recurrent layer, and likewise all rows for the horizontal sweep;
:func:`renet_reference` sweeps every column and every row on its own (the specification).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import RecurrentImpl
from rnnvision.layers.recurrent import make_recurrent


class ReNetLayer(nn.Module):
    """Vertical then horizontal bidirectional sweeps over p x p patches.

    Args:
        in_chans: C, channels of the input.
        hidden_size: units per direction of each sweep; the output has 2 * hidden_size channels.
        patch_size: p; the input's height and width must be multiples of it.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (built by :func:`rnnvision.layers.make_recurrent`).
        impl: implementation of the recurrent layers (``"auto"``, ``"fused"``, ``"reference"``).

    Shapes: (B, C, H, W) -> (B, 2 * hidden_size, H / p, W / p).
    """

    def __init__(
        self, in_chans: int, hidden_size: int, *, patch_size: int = 2, cell: str = "lstm", impl: RecurrentImpl = "auto"
    ) -> None:
        super().__init__()
        self.in_chans, self.hidden_size, self.patch_size = in_chans, hidden_size, patch_size
        self.out_chans = 2 * hidden_size
        features = in_chans * patch_size * patch_size
        self.vertical = make_recurrent(cell, features, hidden_size, bidirectional=True, impl=impl)
        self.horizontal = make_recurrent(cell, 2 * hidden_size, hidden_size, bidirectional=True, impl=impl)

    def _check(self, x: Tensor) -> tuple[int, int, int, int]:
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"ReNetLayer expects input (batch, {self.in_chans}, height, width), got {tuple(x.shape)}")
        b, _, height, width = x.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {p}; pad the input")
        return b, height // p, width // p, p

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 2h, H/p, W/p); each sweep is one call over all columns (rows) of all images."""
        b, rows, cols, p = self._check(x)
        c, two_h = self.in_chans, self.out_chans
        patches = F.pixel_unshuffle(x, p)  # (B, C*p*p, H', W'), features in (C, p, p) order
        columns = patches.permute(0, 3, 2, 1).reshape(b * cols, rows, c * p * p)  # (B*W', H', C*p*p)
        swept, _ = self.vertical(columns)  # (B*W', H', 2h)
        lines = swept.view(b, cols, rows, two_h).transpose(1, 2).reshape(b * rows, cols, two_h)  # (B*H', W', 2h)
        swept, _ = self.horizontal(lines)  # (B*H', W', 2h)
        return swept.view(b, rows, cols, two_h).permute(0, 3, 1, 2)  # (B, 2h, H', W')

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"


def renet_reference(layer: ReNetLayer, x: Tensor) -> Tensor:
    """The specification of :meth:`ReNetLayer.forward`: every column, then every row, swept on its own.

    Shapes: x (B, C, H, W) -> (B, 2h, H/p, W/p), with ``layer``'s weights and recurrent impl.
    """
    b, rows, cols, p = layer._check(x)

    def patch(n: int, r: int, s: int) -> Tensor:  # the (r, s) patch of image n as a (C*p*p,) vector, (C, p, p) order
        return x[n, :, r * p : (r + 1) * p, s * p : (s + 1) * p].reshape(-1)

    out = []
    for n in range(b):
        vertical = []  # vertical[s]: (H', 2h), column s swept up and down
        for s in range(cols):
            column = torch.stack([patch(n, r, s) for r in range(rows)])  # (H', C*p*p)
            vertical.append(layer.vertical(column[None])[0][0])
        image = []
        for r in range(rows):
            line = torch.stack([vertical[s][r] for s in range(cols)])  # (W', 2h)
            image.append(layer.horizontal(line[None])[0][0])  # (W', 2h)
        out.append(torch.stack(image).permute(2, 0, 1))  # (2h, H', W')
    return torch.stack(out)  # (B, 2h, H', W')
