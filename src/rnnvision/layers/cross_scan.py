"""``CrossScan2d``: any 1D recurrent layer run over an image in the four cross-scan orders."""

from __future__ import annotations

from torch import Tensor, nn

from rnnvision.ops.cross_scan import cross_merge, cross_scan


class CrossScan2d(nn.Module):
    """Runs ``layer`` over the pixels of a feature map in four orders and sums the results.

    The orders are row-major, column-major and both reversed (VMamba's cross-scan, see
    :mod:`rnnvision.ops.cross_scan`); the four sequences share the layer's weights and run as one
    batch of 4B sequences. ``layer`` maps (N, T, C) to (N, T, D), or to a tuple whose first item is
    that (as the recurrent layers here return ``(output, state)``).

    Shapes: (B, C, H, W) -> (B, D, H, W).
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        out = self.layer(cross_scan(x))  # (4B, H*W, C) -> (4B, H*W, D)
        out = out[0] if isinstance(out, tuple) else out
        return cross_merge(out, height, width)  # (B, D, H, W)
