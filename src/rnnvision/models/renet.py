"""ReNet models: the ReNet image classifier (Visin et al. 2015) and the ReSeg segmenter (Visin et al. 2016).

Both stack :class:`~rnnvision.layers.ReNetLayer` s — each cuts its input into p x p patches and
sweeps a bidirectional RNN down and up every column, then along every row — so every feature
sees the whole image. ``renet`` flattens the last feature map into dense layers (ReNet paper,
section 3); ``reseg`` upsamples it back to the input resolution with transposed convolutions
(ReSeg's decoder) and labels every pixel with
:class:`~rnnvision.models.segment_head.PixelClassifier`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import RecurrentImpl
from rnnvision.layers.renet import ReNetLayer
from rnnvision.models.classifier import ImageClassifier
from rnnvision.models.registry import register_model
from rnnvision.models.segment_head import PixelClassifier

ImageSize = int | tuple[int, int]
Cell = Literal["lstm", "gru", "rnn"]


def renet_encoder(
    in_chans: int,
    hidden_sizes: tuple[int, ...],
    patch_sizes: tuple[int, ...],
    *,
    cell: str,
    dropout: float,
    impl: RecurrentImpl,
) -> nn.Sequential:
    """Stacked ReNet layers (dropout between them): (B, C, H, W) -> (B, 2 * hidden_sizes[-1], H / prod(p), W / prod(p))."""
    if len(hidden_sizes) != len(patch_sizes) or not hidden_sizes:
        raise ValueError(
            f"hidden_sizes {hidden_sizes} and patch_sizes {patch_sizes} must be non-empty and equally long"
        )
    layers: list[nn.Module] = []
    chans = in_chans
    for index, (hidden, patch) in enumerate(zip(hidden_sizes, patch_sizes)):
        if index and dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(ReNetLayer(chans, hidden, patch_size=patch, cell=cell, impl=impl))
        chans = 2 * hidden
    return nn.Sequential(*layers)


class ReNetClassifier(ImageClassifier):
    """Stacked ReNet layers, then dense layers over the flattened feature map (ReNet paper)."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        img_size: ImageSize,
        hidden_sizes: tuple[int, ...],
        patch_sizes: tuple[int, ...],
        cell: str,
        head_hidden: int,
        dropout: float,
        impl: RecurrentImpl,
    ) -> None:
        super().__init__()
        height, width = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        stride = math.prod(patch_sizes)
        if height % stride or width % stride:
            raise ValueError(f"img_size {height}x{width} must be a multiple of the product of patch_sizes ({stride})")
        self.in_chans, self.img_size = in_chans, (height, width)
        self.encoder = renet_encoder(in_chans, hidden_sizes, patch_sizes, cell=cell, dropout=dropout, impl=impl)
        features = 2 * hidden_sizes[-1] * (height // stride) * (width // stride)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(features, head_hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, F): the last ReNet layer's map, flattened."""
        return self.encoder(images).flatten(1)  # (B, 2h * H' * W')


def conv_stem(in_chans: int, stem_chans: tuple[int, ...]) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU per entry, at the input's resolution:
    (B, C, H, W) -> (B, stem_chans[-1], H, W).

    ReSeg reads VGG-16 features (a pretrained convolutional front end); this is a small one
    trained from scratch, which gives the first ReNet layer local edges and textures instead of raw
    pixel patches. Empty ``stem_chans``: the identity.
    """
    layers: list[nn.Module] = []
    chans = in_chans
    for out in stem_chans:
        layers += [nn.Conv2d(chans, out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        chans = out
    return nn.Sequential(*layers)


class ReSeg(nn.Module):
    """Optional convolutional front end, ReNet encoder, transposed-convolution decoder, per-pixel classifier; any size.

    The input is zero-padded on the right and bottom to a multiple of the encoder's stride, and
    the logits are cropped back to the input size. Each decoder stage undoes one ReNet layer's
    patching (a p x p transposed convolution with stride p, batch norm, ReLU; the batch norm is
    ours: without it the decoder's features start too small for training to get going). With
    ``input_skip`` the per-pixel classifier also sees the input pixels (two 1x1 convolutions);
    without it, it is ReSeg's single 1x1 convolution over the decoder's features. With a front end
    (``stem_chans``) the ReNet layers read its features, and the skip carries them instead of the
    pixels: the classifier sees the local detail (thin poles, signs) that the encoder's stride blurs.
    ``pooled_chans`` adds a second front-end stage after a 2 x 2 max-pool, as VGG's second block
    (wider features over a larger window at half the cost per channel); the decoder then has one
    more 2 x 2 transposed convolution, and the skip still carries the full-resolution features.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        hidden_sizes: tuple[int, ...],
        patch_sizes: tuple[int, ...],
        decoder_chans: int,
        cell: str,
        input_skip: bool,
        stem_chans: tuple[int, ...],
        pooled_chans: tuple[int, ...],
        dropout: float,
        impl: RecurrentImpl,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.stem = conv_stem(in_chans, stem_chans)
        stem_out = stem_chans[-1] if stem_chans else in_chans
        self.pooled = (
            nn.Sequential(nn.MaxPool2d(2), conv_stem(stem_out, pooled_chans)) if pooled_chans else nn.Sequential()
        )
        upsampling = (2,) if pooled_chans else ()
        self.stride = math.prod(patch_sizes + upsampling)
        encoder_in = pooled_chans[-1] if pooled_chans else stem_out
        self.encoder = renet_encoder(encoder_in, hidden_sizes, patch_sizes, cell=cell, dropout=dropout, impl=impl)
        stages: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        chans = 2 * hidden_sizes[-1]
        for patch in reversed(upsampling + patch_sizes):
            stages += [
                nn.ConvTranspose2d(chans, decoder_chans, kernel_size=patch, stride=patch, bias=False),
                nn.BatchNorm2d(decoder_chans),
                nn.ReLU(),
            ]
            chans = decoder_chans
        self.decoder = nn.Sequential(*stages)
        self.classifier = PixelClassifier(
            decoder_chans, stem_out, num_classes, hidden=decoder_chans, input_skip=input_skip
        )

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, num_classes, H, W) logits."""
        height, width = images.shape[-2:]
        local = self.stem(images)  # (B, S, H, W); S = C without a front end
        padded = F.pad(local, (0, -width % self.stride, 0, -height % self.stride))  # (B, S, H+, W+)
        pooled = self.pooled(padded)  # (B, P, H+ / 2, W+ / 2) with pooled_chans; else padded itself
        features = self.decoder(self.encoder(pooled))[:, :, :height, :width]  # (B, decoder_chans, H, W)
        return self.classifier(features, local)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor]:
        """An odd-sized batch, which exercises the padding."""
        return (torch.rand(batch_size, self.in_chans, 13, 11),)


@register_model(task="classify", tiny={"hidden_sizes": (4, 4), "head_hidden": 8, "img_size": 8})
def renet(
    *,
    num_classes: int = 10,
    in_chans: int = 1,
    img_size: ImageSize = 28,
    hidden_sizes: tuple[int, ...] = (64, 64),
    patch_sizes: tuple[int, ...] = (2, 2),
    cell: Cell = "lstm",
    head_hidden: int = 256,
    dropout: float = 0.2,
    impl: RecurrentImpl = "auto",
) -> ReNetClassifier:
    """ReNet: stacked ReNet layers (vertical + horizontal bidirectional sweeps) -> dense layers."""
    return ReNetClassifier(
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        hidden_sizes=hidden_sizes,
        patch_sizes=patch_sizes,
        cell=cell,
        head_hidden=head_hidden,
        dropout=dropout,
        impl=impl,
    )


@register_model(task="segment", tiny={"hidden_sizes": (4, 4), "decoder_chans": 4})
def reseg(
    *,
    num_classes: int = 11,
    in_chans: int = 1,
    hidden_sizes: tuple[int, ...] = (64, 64),
    patch_sizes: tuple[int, ...] = (2, 2),
    decoder_chans: int = 64,
    cell: Cell = "lstm",
    input_skip: bool = True,
    stem_chans: tuple[int, ...] = (),
    pooled_chans: tuple[int, ...] = (),
    dropout: float = 0.0,
    impl: RecurrentImpl = "auto",
) -> ReSeg:
    """ReSeg: [conv front end] -> ReNet-layer encoder -> transposed-conv decoder -> per-pixel classes, any size.

    The optional front end: ``stem_chans`` 3x3 convolutions at full resolution, then with
    ``pooled_chans`` a 2x2 max-pool and more 3x3 convolutions (:class:`ReSeg`).
    """
    return ReSeg(
        num_classes=num_classes,
        in_chans=in_chans,
        hidden_sizes=hidden_sizes,
        patch_sizes=patch_sizes,
        decoder_chans=decoder_chans,
        cell=cell,
        input_skip=input_skip,
        stem_chans=stem_chans,
        pooled_chans=pooled_chans,
        dropout=dropout,
        impl=impl,
    )
