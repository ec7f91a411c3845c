"""Classifiers built on minGRU / minLSTM (Feng et al. 2024).

- ``pixel_mingru`` / ``pixel_minlstm``: a stack of residual minGRU (minLSTM) blocks reads the image
  one pixel per step — 784 steps for MNIST, the sequential-MNIST benchmark of Le et al. 2015 —
  and the output at the last pixel goes to a linear classifier. ``permutation_seed`` reads the
  pixels in a fixed shuffled order (permuted MNIST).
- ``cross_mingru``: a patch embedding, then blocks in which a minGRU runs over the patch grid in
  the four cross-scan orders (:class:`rnnvision.layers.cross_scan.CrossScan2d`), then mean pooling
  and a linear classifier.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from torch import Tensor, nn
from typing_extensions import Unpack

from rnnvision.impl import MinImpl
from rnnvision.layers.cross_scan import CrossScan2d
from rnnvision.layers.minrnn import MIN_CELLS, MinRNNStack, mlp
from rnnvision.models.classifier import ImageClassifier, ImageSize, PixelClassifier, _pair
from rnnvision.models.registry import register_model
from rnnvision.options import Default, with_defaults


class PixelMinRNN(PixelClassifier):
    """A :class:`MinRNNStack` over the pixels of an image, then a linear classifier.

    Args:
        cell: ``"mingru"`` or ``"minlstm"``.
        dim: width of every block; depth: number of blocks; mlp_ratio: MLP width / dim.
        permutation_seed: read the pixels in this seeded fixed order (permuted MNIST).
        pool: ``"last"`` classifies the output at the last pixel, ``"mean"`` the mean over pixels.
        impl: the recurrence's implementation (``"auto"``, ``"reference"``, ``"chunked"``, ``"log"``).
    """

    def __init__(
        self,
        *,
        cell: str,
        num_classes: int,
        in_chans: int,
        img_size: ImageSize,
        dim: int,
        depth: int,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        permutation_seed: int | None = None,
        pool: str = "last",
        impl: MinImpl = "auto",
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        self._init_reader(
            num_classes=num_classes, in_chans=in_chans, img_size=img_size, pool=pool, permutation_seed=permutation_seed
        )
        self.stack = MinRNNStack(
            in_chans, dim, depth, cell=cell, mlp_ratio=mlp_ratio, dropout=dropout, impl=impl, chunk=chunk
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))

    def sequence_features(self, seq: Tensor) -> Tensor:
        """(B, H*W, C) -> (B, D): the stack's output at the last pixel (or its mean over pixels)."""
        out, _ = self.stack(seq)  # (B, H*W, D)
        return out[:, -1] if self.pool == "last" else out.mean(1)


class CrossMinBlock(nn.Module):
    """Pre-norm residual block on a (B, H, W, D) grid: ``x + cross_scan_rnn(norm(x))``, ``x + mlp(norm(x))``."""

    def __init__(
        self,
        dim: int,
        *,
        cell: str = "mingru",
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        impl: MinImpl = "auto",
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.scan = CrossScan2d(MIN_CELLS[cell](dim, dim, impl=impl, chunk=chunk))
        self.mlp = mlp(dim, mlp_ratio)
        self.norm2 = nn.LayerNorm(dim) if self.mlp is not None else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, D) -> (B, H, W, D)."""
        mixed = self.scan(self.norm1(x).permute(0, 3, 1, 2))  # (B, D, H, W)
        x = x + self.drop(mixed.permute(0, 2, 3, 1))  # (B, H, W, D)
        if self.mlp is not None and self.norm2 is not None:
            x = x + self.drop(self.mlp(self.norm2(x)))
        return x


class CrossMinRNN(ImageClassifier):
    """Patch embedding, :class:`CrossMinBlock` s over the patch grid, mean pooling, linear classifier."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        img_size: ImageSize,
        patch_size: int,
        dim: int,
        depth: int,
        cell: str = "mingru",
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        impl: MinImpl = "auto",
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        self.in_chans, self.img_size, self.num_classes = in_chans, _pair(img_size), num_classes
        if self.img_size[0] % patch_size or self.img_size[1] % patch_size:
            raise ValueError(f"image size {self.img_size} is not a multiple of patch_size {patch_size}")
        self.embed = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.blocks = nn.Sequential(
            *(
                CrossMinBlock(dim, cell=cell, mlp_ratio=mlp_ratio, dropout=dropout, impl=impl, chunk=chunk)
                for _ in range(depth)
            )
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))

    def forward_features(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D): blocks over the (H/p, W/p) grid, mean over the grid."""
        x = self.embed(images).permute(0, 2, 3, 1)  # (B, H/p, W/p, D)
        return self.norm(self.blocks(x)).mean((1, 2))  # (B, D)


_TINY_PIXEL = {"hidden_size": 8, "num_layers": 2, "img_size": 5}
# option names before the naming scheme of CONTRIBUTING.md; configs and checkpoints may still use them
_RENAMED = {"dim": "hidden_size", "depth": "num_layers"}


class PixelMinOptions(TypedDict, total=False):
    """The options of the two pixel-by-pixel minGRU / minLSTM builders, with their defaults."""

    num_classes: Annotated[int, Default(10)]
    in_chans: Annotated[int, Default(1)]
    img_size: Annotated[ImageSize, Default(28)]
    hidden_size: Annotated[int, Default(64)]
    num_layers: Annotated[int, Default(3)]
    mlp_ratio: Annotated[float, Default(2.0)]
    dropout: Annotated[float, Default(0.0)]
    permutation_seed: Annotated[int | None, Default(None)]
    pool: Annotated[str, Default("last")]
    impl: Annotated[MinImpl, Default("auto")]


def _pixel_min_rnn(cell: str, given: PixelMinOptions) -> PixelMinRNN:
    options = with_defaults(PixelMinOptions, given)
    dim, depth = options.pop("hidden_size"), options.pop("num_layers")
    return PixelMinRNN(cell=cell, dim=dim, depth=depth, **options)


@register_model(task="classify", tiny=_TINY_PIXEL, renamed=_RENAMED)
def pixel_mingru(**options: Unpack[PixelMinOptions]) -> PixelMinRNN:
    """Residual minGRU blocks over the pixels one at a time (sequential MNIST); ``permutation_seed`` for permuted."""
    return _pixel_min_rnn("mingru", options)


@register_model(task="classify", tiny=_TINY_PIXEL, renamed=_RENAMED)
def pixel_minlstm(**options: Unpack[PixelMinOptions]) -> PixelMinRNN:
    """Residual minLSTM blocks over the pixels one at a time; ``permutation_seed`` for permuted MNIST."""
    return _pixel_min_rnn("minlstm", options)


@register_model(
    task="classify", tiny={"hidden_size": 8, "num_layers": 1, "img_size": 8, "patch_size": 2}, renamed=_RENAMED
)
def cross_mingru(
    *,
    num_classes: int = 10,
    in_chans: int = 1,
    img_size: ImageSize = 28,
    patch_size: int = 2,
    hidden_size: int = 64,
    num_layers: int = 4,
    mlp_ratio: float = 2.0,
    dropout: float = 0.0,
    impl: MinImpl = "auto",
) -> CrossMinRNN:
    """Patch embedding, then minGRU blocks scanning the patch grid in four orders (VMamba cross-scan)."""
    return CrossMinRNN(
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        patch_size=patch_size,
        dim=hidden_size,
        depth=num_layers,
        mlp_ratio=mlp_ratio,
        dropout=dropout,
        impl=impl,
    )
