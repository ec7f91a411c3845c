"""The per-pixel classifier shared by the segmenters: decoded features and the input pixel, then a small MLP.

The recurrent encoders see the image in patches or windows; the class of a pixel at a digit's
edge, or any fine boundary, depends on that pixel's own value. ``PixelClassifier`` takes the
features laid out at the input resolution together with the input pixels (a skip connection)
and applies two 1x1 convolutions with a ReLU between, which can draw a sharp boundary in the
pixel value that a single linear layer would learn only slowly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PixelClassifier(nn.Module):
    """(B, F, H, W) features and (B, C, H, W) images -> (B, num_classes, H, W) logits, pixel by pixel.

    The "images" may be a front end's full-resolution features instead of the pixels (ReSeg's
    ``stem_chans``); ``in_chans`` is then their channel count. With ``input_skip=False`` they are
    not used and the classifier is a single 1x1 convolution over the features.
    """

    def __init__(self, feature_chans: int, in_chans: int, num_classes: int, *, hidden: int, input_skip: bool) -> None:
        super().__init__()
        self.input_skip = input_skip
        self.layers: nn.Module
        if input_skip:
            self.layers = nn.Sequential(
                nn.Conv2d(feature_chans + in_chans, hidden, kernel_size=1),
                nn.ReLU(),
                nn.Conv2d(hidden, num_classes, kernel_size=1),
            )
        else:
            self.layers = nn.Conv2d(feature_chans, num_classes, kernel_size=1)

    def forward(self, features: Tensor, images: Tensor) -> Tensor:
        if self.input_skip:
            features = torch.cat([features, images], dim=1)  # (B, F + C, H, W)
        return self.layers(features)
