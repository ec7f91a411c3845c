"""CRNN: convolutional features -> bidirectional LSTM -> per-column class scores, trained with CTC.

Shi, Bai and Yao 2015, "An End-to-End Trainable Neural Network for Image-based Sequence
Recognition and Its Application to Scene Text Recognition" (arXiv:1507.05717). The conv stack
follows Table 1 of the paper in spirit: six 3x3 convolutions with max-pools 2x2, 2x2, 2x1, 2x1 (after
the 1st, 2nd, 4th and 6th), then one convolution whose kernel spans the remaining height (in place of
the paper's last 2x2 convolution) collapses each column; together they turn an image of fixed height
into one feature vector per 4 pixels of width; a 2-layer bidirectional LSTM reads
those columns left to right and right to left; a linear layer gives, per column, scores over the
CTC blank (class 0) and the characters.

Variable width. Images of one batch share a height and are right-padded to the widest; the true
``widths`` travel with them. After every convolution and pooling stage the columns beyond each
image's (downsampled) width are set to zero, so a 3x3 convolution at an image's right edge sees
exactly the zeros it would see on the image alone; batch normalisation takes its training
statistics over the valid columns only (:class:`MaskedBatchNorm2d`); the LSTM runs with
``lengths``. An image therefore gives the same column scores alone as inside a padded batch.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

import torch
from torch import Tensor, nn
from typing_extensions import Unpack

from rnnvision.impl import RecurrentImpl
from rnnvision.layers.recurrent import make_recurrent
from rnnvision.models.registry import register_model
from rnnvision.options import Default, with_defaults

Variant = Literal["tiny", "small", "medium", "base"]

# conv channels (6 convolutions; the height-collapsing one keeps the last) and hidden size per variant
VARIANTS: dict[str, tuple[tuple[int, ...], int]] = {
    "tiny": ((4, 8, 8, 8, 16, 16), 8),  # for tests
    "small": ((16, 32, 64, 64, 128, 128), 128),  # 1.0M parameters, ~1/16 of base's convolution work
    "medium": ((32, 64, 128, 128, 256, 256), 192),  # 3.1M, ~1/4
    "base": ((64, 128, 256, 256, 512, 512), 256),  # the paper's channels, 9.2M
}
WIDTH_STRIDE = 4  # two 2x2 pools; the 2x1 pools keep the width
HEIGHT_STRIDE = 16


def column_mask(lengths: Tensor, width: int) -> Tensor:
    """(B,) valid widths -> (B, 1, 1, W) float mask, 1 on the valid columns."""
    valid = torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]  # (B, W)
    return valid[:, None, None, :].float()


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics ignore padded columns.

    ``forward(x, mask)``: x (B, C, H, W), mask (B, 1, 1, W) with 1 on valid columns. In training
    the mean and (biased) variance are taken over the valid positions only and the running
    statistics are updated with them (unbiased variance, as ``nn.BatchNorm2d`` does); in eval
    mode the running statistics are used, exactly as in ``nn.BatchNorm2d``. With an all-ones
    mask it equals ``nn.BatchNorm2d``.
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None or not self.training:
            return super().forward(x)
        count = mask.sum() * x.shape[2]  # valid positions per channel: columns x rows
        masked = x * mask  # (B, C, H, W), zero on padding
        mean = masked.sum(dim=(0, 2, 3)) / count  # (C,)
        var = ((masked * x).sum(dim=(0, 2, 3)) / count - mean.square()).clamp(min=0)  # (C,) biased
        tracked, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        if self.track_running_stats and tracked is not None and running_mean is not None and running_var is not None:
            with torch.no_grad():
                tracked += 1
                momentum = 1.0 / float(tracked) if self.momentum is None else self.momentum
                unbiased = var * count / (count - 1).clamp(min=1)
                running_mean.lerp_(mean.detach(), momentum)
                running_var.lerp_(unbiased.detach(), momentum)
        scale = torch.rsqrt(var + self.eps)  # (C,)
        if self.affine:
            scale = scale * self.weight
        shift = -mean * scale + (self.bias if self.affine else 0)
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class ConvBlock(nn.Module):
    """conv (bias-free) -> masked BatchNorm -> ReLU -> zero the padded columns."""

    def __init__(
        self, in_chans: int, out_chans: int, kernel: tuple[int, int] = (3, 3), padding: tuple[int, int] = (1, 1)
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, kernel, padding=padding, bias=False)
        self.norm = MaskedBatchNorm2d(out_chans)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, C, H, W), mask (B, 1, 1, W) -> (B, C', H', W), zero beyond each width."""
        return torch.relu(self.norm(self.conv(x), mask)) * mask


class CRNN(nn.Module):
    """Conv feature extractor -> 2-layer bidirectional LSTM/GRU over columns -> class scores.

    Args:
        num_classes: classes per column, the CTC blank (index 0) included.
        in_chans: image channels (1 for grey).
        img_height: input height, a multiple of 16; the conv stack reduces it to 1.
        channels: the six 3x3 convolutions' output channels.
        hidden_size: recurrent hidden size per direction.
        cell: ``"lstm"`` or ``"gru"``.
        dropout: between the recurrent layers and before the class scores.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        img_height: int,
        channels: tuple[int, ...],
        hidden_size: int,
        cell: str = "lstm",
        num_layers: int = 2,
        dropout: float = 0.0,
        impl: RecurrentImpl = "auto",
    ) -> None:
        super().__init__()
        if img_height % HEIGHT_STRIDE or img_height < HEIGHT_STRIDE:
            raise ValueError(f"img_height must be a positive multiple of {HEIGHT_STRIDE}, got {img_height}")
        if len(channels) != 6:
            raise ValueError(f"channels must list 6 convolutions, got {len(channels)}")
        self.num_classes, self.in_chans, self.img_height = num_classes, in_chans, img_height
        c = channels
        self.blocks = nn.ModuleList(
            [
                ConvBlock(in_chans, c[0]),
                ConvBlock(c[0], c[1]),
                ConvBlock(c[1], c[2]),
                ConvBlock(c[2], c[3]),
                ConvBlock(c[3], c[4]),
                ConvBlock(c[4], c[5]),
            ]
        )
        # max-pool after these blocks: (kernel = stride) in (height, width)
        self.pools = {0: (2, 2), 1: (2, 2), 3: (2, 1), 5: (2, 1)}
        self.collapse = ConvBlock(c[5], c[5], kernel=(img_height // HEIGHT_STRIDE, 3), padding=(0, 1))
        self.rnn = make_recurrent(
            cell,
            c[5],
            hidden_size,
            num_layers=num_layers,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
            impl=impl,
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden_size, num_classes))
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # faster oneDNN convolutions on CPU (BENCHMARKS.md)

    @staticmethod
    def output_lengths(widths: Tensor) -> Tensor:
        """(B,) image widths -> (B,) number of columns the model reads (floor(floor(w/2)/2))."""
        return torch.div(widths, WIDTH_STRIDE, rounding_mode="floor")

    def _widths(self, images: Tensor, widths: Tensor | None) -> Tensor:
        b, _, h, w = images.shape
        if h != self.img_height:
            raise ValueError(f"images must be {self.img_height} pixels high, got {h}")
        if widths is None:
            widths = torch.full((b,), w, dtype=torch.long, device=images.device)
        if int(widths.min()) < WIDTH_STRIDE or int(widths.max()) > w:
            raise ValueError(f"widths must lie in [{WIDTH_STRIDE}, {w}], got {widths.tolist()}")
        return widths.to(images.device)

    def forward_features(self, images: Tensor, widths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) images in [0, 1], right-padded; widths (B,) -> ((B, T, 2*hidden), lengths (B,))."""
        lengths = self._widths(images, widths)
        x = ((images - 0.5) / 0.5).contiguous(memory_format=torch.channels_last)
        mask = column_mask(lengths, x.shape[-1])
        x = x * mask
        for i, block in enumerate(self.blocks):
            x = block(x, mask)
            if i in self.pools:
                kernel = self.pools[i]
                x = nn.functional.max_pool2d(x, kernel, kernel)  # (B, C, H/2, W/kw)
                if kernel[1] > 1:
                    lengths = torch.div(lengths, kernel[1], rounding_mode="floor")
                    mask = column_mask(lengths, x.shape[-1])
                    x = x * mask
        x = self.collapse(x, mask)  # (B, C, 1, T)
        seq = x.squeeze(2).transpose(1, 2)  # (B, T, C)
        out, _ = self.rnn(seq, lengths=lengths, final_state=False)  # (B, T, 2*hidden)
        return out, lengths

    def forward_head(self, features: Tensor) -> Tensor:
        """(B, T, 2*hidden) -> (B, T, num_classes) scores (log_softmax gives CTC log-probabilities)."""
        return self.head(features)

    def forward(self, images: Tensor, widths: Tensor | None = None) -> Tensor:
        """(B, C, H, W) right-padded images and their widths (B,) -> (B, T, num_classes), T = W // 4."""
        features, _ = self.forward_features(images, widths)
        return self.forward_head(features)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, Tensor]:
        """A right-padded random batch of mixed widths, for tests."""
        widths = torch.tensor([24 + 7 * (i % 3) for i in range(batch_size)])
        images = torch.rand(batch_size, self.in_chans, self.img_height, int(widths.max()))
        return images * column_mask(widths, images.shape[-1]), widths


class CRNNOptions(TypedDict, total=False):
    """The options of the two CRNN builders, with their defaults."""

    num_classes: Annotated[int, Default(37)]
    in_chans: Annotated[int, Default(1)]
    img_height: Annotated[int, Default(32)]
    variant: Annotated[Variant, Default("base")]
    hidden_size: Annotated[int, Default(0)]
    dropout: Annotated[float, Default(0.0)]
    impl: Annotated[RecurrentImpl, Default("auto")]


def _crnn(cell: str, given: CRNNOptions) -> CRNN:
    options = with_defaults(CRNNOptions, given)
    variant = options.pop("variant")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    channels, hidden = VARIANTS[variant]
    return CRNN(cell=cell, channels=channels, hidden_size=options.pop("hidden_size") or hidden, **options)


_TINY = {"variant": "tiny", "img_height": 16}
_RENAMED = {"size": "variant"}  # the option's name before the naming scheme of CONTRIBUTING.md


@register_model(task="recognize", tiny=_TINY, renamed=_RENAMED)
def crnn(**options: Unpack[CRNNOptions]) -> CRNN:
    """CRNN (Shi et al. 2015): conv columns -> 2-layer BiLSTM -> CTC; variants tiny, small, medium, base.

    ``num_classes`` counts the CTC blank; ``hidden_size`` 0 takes the variant's default (base: the
    paper's 64-512 channels and 256 hidden units; medium: half the channels; small: a quarter).
    """
    return _crnn("lstm", options)


@register_model(task="recognize", tiny=_TINY, renamed=_RENAMED)
def crnn_gru(**options: Unpack[CRNNOptions]) -> CRNN:
    """CRNN with a 2-layer bidirectional GRU in place of the LSTM."""
    return _crnn("gru", options)
