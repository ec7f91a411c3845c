"""``mdlstm_seg``: scene labelling with stacked multi-directional 2D LSTMs (Byeon et al. 2015).

The image is cut into non-overlapping p x p windows (each window's pixels become the channels of
one position); stacked :class:`~rnnvision.layers.MDLSTM2d` layers, each scanning from up to four
corners so that every position sees the whole image, are joined by 1x1 tanh feed-forward layers
as in the paper; a 1x1 convolution then gives the class scores (or, with the input skip, features
for a per-pixel classifier that also sees each pixel's value) of all p x p pixels of each window,
laid back out at the input resolution. Any input size: the input is zero-padded on the right and
bottom to a multiple of p and the logits are cropped back.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import MDLSTMImpl
from rnnvision.layers.mdlstm import MDLSTM2d
from rnnvision.models.registry import register_model
from rnnvision.models.segment_head import PixelClassifier


class MDLSTMSegmenter(nn.Module):
    """p x p windows -> [MDLSTM2d, (1x1 conv + tanh)]... -> 1x1 conv -> per-pixel logits.

    Without ``input_skip`` the last 1x1 convolution gives the K class scores of each of the p x p
    pixels of a window (Byeon et al.). With it, it gives ``head_chans`` features per pixel, which
    :class:`~rnnvision.models.segment_head.PixelClassifier` combines with the pixel's own value.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        hidden_sizes: tuple[int, ...],
        patch_size: int,
        directions: int,
        merge: str,
        input_skip: bool,
        head_chans: int,
        dropout: float,
        impl: MDLSTMImpl,
    ) -> None:
        super().__init__()
        self.in_chans, self.patch_size = in_chans, patch_size
        chans = in_chans * patch_size * patch_size
        blocks: list[nn.Module] = []
        for index, hidden in enumerate(hidden_sizes):
            if index:  # Byeon et al.'s feed-forward layer between two LSTM layers
                blocks += [nn.Conv2d(chans, chans, kernel_size=1), nn.Tanh()]
            layer = MDLSTM2d(chans, hidden, directions=directions, merge=merge, impl=impl)
            blocks.append(layer)
            chans = layer.out_chans
        self.body = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        out_chans = head_chans if input_skip else num_classes
        self.unwindow = nn.Conv2d(chans, out_chans * patch_size * patch_size, kernel_size=1)
        self.classifier = (
            PixelClassifier(head_chans, in_chans, num_classes, hidden=head_chans, input_skip=True)
            if input_skip
            else None
        )

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_classes, H, W) logits."""
        height, width = images.shape[-2:]
        p = self.patch_size
        padded = F.pad(images, (0, -width % p, 0, -height % p))  # (B, C, H+, W+)
        windows = F.pixel_unshuffle(padded, p)  # (B, C*p*p, H+/p, W+/p)
        scores = self.unwindow(self.dropout(self.body(windows)))  # (B, K*p*p, H+/p, W+/p); K = head_chans with the skip
        scores = F.pixel_shuffle(scores, p)[:, :, :height, :width]  # (B, K, H, W)
        return scores if self.classifier is None else self.classifier(scores, images)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor]:
        """An odd-sized batch, which exercises the padding."""
        return (torch.rand(batch_size, self.in_chans, 7, 9),)


@register_model(task="segment", tiny={"hidden_sizes": (3, 4), "head_chans": 4})
def mdlstm_seg(
    *,
    num_classes: int = 11,
    in_chans: int = 1,
    hidden_sizes: tuple[int, ...] = (32, 32),
    patch_size: int = 2,
    directions: Literal[1, 2, 3, 4] = 4,
    merge: Literal["sum", "concat"] = "sum",
    input_skip: bool = True,
    head_chans: int = 32,
    dropout: float = 0.0,
    impl: MDLSTMImpl = "auto",
) -> MDLSTMSegmenter:
    """Stacked multi-directional 2D LSTMs over p x p windows -> 1x1 classifier, per-pixel classes, any size."""
    return MDLSTMSegmenter(
        num_classes=num_classes,
        in_chans=in_chans,
        hidden_sizes=hidden_sizes,
        patch_size=patch_size,
        directions=directions,
        merge=merge,
        input_skip=input_skip,
        head_chans=head_chans,
        dropout=dropout,
        impl=impl,
    )
