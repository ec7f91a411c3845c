"""PixelRNN (Row LSTM, Diagonal BiLSTM) and the PixelCNN baseline (van den Oord et al. 2016).

Every model: a 7 x 7 mask A convolution to 2h features, ``num_layers`` residual causal layers of h
hidden units, then ReLU, 1 x 1 (mask B) to ``head_hidden``, ReLU, 1 x 1 (mask B) to the logits —
one Bernoulli logit per channel for binary images (``levels=2``) or a softmax over ``levels``
values per channel (``levels=256`` for 8-bit images). The models are fully convolutional: one
trained at 28 x 28 runs on any size; ``img_size`` is only the default size of :meth:`sample`.

Defaults follow the paper's binarized-MNIST model (section 5.1): 7 layers, h = 16.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from torch import nn
from typing_extensions import Unpack

from rnnvision.impl import RecurrentImpl
from rnnvision.layers.pixelrnn import DiagonalBiLSTM, MaskedResidualBlock, RowLSTM
from rnnvision.models.autoregressive import AutoregressiveImageModel, ImageSize
from rnnvision.models.registry import register_model
from rnnvision.options import Default, with_defaults

_TINY = {"hidden_size": 4, "num_layers": 2, "head_hidden": 8, "img_size": (5, 4)}
# option names before the naming scheme of CONTRIBUTING.md; configs and checkpoints may still use them
_RENAMED = {"hidden": "hidden_size", "layers": "num_layers", "out_hidden": "head_hidden"}


class PixelRNN(AutoregressiveImageModel):
    """PixelRNN with ``num_layers`` Row LSTM (``layer="row"``) or Diagonal BiLSTM (``"diagonal"``) layers."""

    def __init__(
        self,
        *,
        layer: str,
        in_chans: int,
        levels: int,
        img_size: ImageSize,
        hidden_size: int,
        num_layers: int,
        head_hidden: int,
        kernel: int = 3,
        impl: RecurrentImpl = "auto",
    ) -> None:
        body: list[nn.Module]
        if layer == "row":
            body = [
                RowLSTM(2 * hidden_size, hidden_size, kernel=kernel, colors=in_chans, impl=impl)
                for _ in range(num_layers)
            ]
        elif layer == "diagonal":
            body = [DiagonalBiLSTM(2 * hidden_size, hidden_size, colors=in_chans, impl=impl) for _ in range(num_layers)]
        else:
            raise ValueError(f"layer must be 'row' or 'diagonal', got {layer!r}")
        super().__init__(
            in_chans=in_chans,
            levels=levels,
            img_size=img_size,
            channels=2 * hidden_size,
            out_hidden=head_hidden,
            body=nn.ModuleList(body),
        )


class PixelCNN(AutoregressiveImageModel):
    """PixelCNN: ``num_layers`` residual blocks around a 3 x 3 mask B convolution (no recurrent state)."""

    def __init__(
        self, *, in_chans: int, levels: int, img_size: ImageSize, hidden_size: int, num_layers: int, head_hidden: int
    ) -> None:
        body = nn.ModuleList(
            MaskedResidualBlock(2 * hidden_size, hidden_size, colors=in_chans) for _ in range(num_layers)
        )
        super().__init__(
            in_chans=in_chans,
            levels=levels,
            img_size=img_size,
            channels=2 * hidden_size,
            out_hidden=head_hidden,
            body=body,
        )


class GeneratorOptions(TypedDict, total=False):
    """The options the three builders share, with their defaults (binarized MNIST)."""

    in_chans: Annotated[int, Default(1)]
    levels: Annotated[int, Default(2)]
    img_size: Annotated[ImageSize, Default(28)]
    hidden_size: Annotated[int, Default(16)]
    num_layers: Annotated[int, Default(7)]
    head_hidden: Annotated[int, Default(32)]


@register_model(task="generate", tiny=_TINY, renamed=_RENAMED)
def pixelrnn_row(*, kernel: int = 3, impl: RecurrentImpl = "auto", **options: Unpack[GeneratorOptions]) -> PixelRNN:
    """PixelRNN with Row LSTM layers (k x 1 convolutions, a triangle of context above each pixel)."""
    return PixelRNN(layer="row", kernel=kernel, impl=impl, **with_defaults(GeneratorOptions, options))


@register_model(task="generate", tiny=_TINY, renamed=_RENAMED)
def pixelrnn_diag(*, impl: RecurrentImpl = "auto", **options: Unpack[GeneratorOptions]) -> PixelRNN:
    """PixelRNN with Diagonal BiLSTM layers (the whole context above and to the left of each pixel)."""
    return PixelRNN(layer="diagonal", impl=impl, **with_defaults(GeneratorOptions, options))


@register_model(task="generate", tiny={**_TINY, "hidden_size": 8}, renamed=_RENAMED)
def pixelcnn(**options: Unpack[GeneratorOptions]) -> PixelCNN:
    """PixelCNN baseline: masked 3 x 3 convolutions in residual blocks, the same masks and head."""
    return PixelCNN(**with_defaults(GeneratorOptions, options))
