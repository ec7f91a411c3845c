"""``pixel_lru``: stacked LRU blocks over the pixels of an image (Orvieto et al. 2023, section 3 and Figure 1).

The paper's deep LRU: a linear encoder lifts each pixel to ``hidden_size`` features, then ``num_layers``
residual blocks, each ``x + dropout(GLU(GELU(LRU(norm(x)))))`` with pre-normalisation, a gated
linear unit ``W_1 y * sigmoid(W_2 y)`` as the position-wise MLP; a final norm, the mean over the
steps (or the last step) and a linear classifier. ``permutation_seed`` reads the pixels in a fixed
shuffled order (permuted MNIST). The LRU's complex eigenvalues carry a phase, which lets the
state tell where in the sequence a pixel came from even when its gates could not (compare minGRU
on permuted MNIST, BENCHMARKS.md).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from rnnvision.impl import LRUImpl
from rnnvision.layers.lru import LRU
from rnnvision.models.classifier import ImageSize, PixelClassifier
from rnnvision.models.registry import register_model


class LRUBlock(nn.Module):
    """Pre-norm residual block: ``x + dropout(GLU(GELU(LRU(norm(x)))))``; (B, T, D) -> (B, T, D)."""

    def __init__(
        self,
        dim: int,
        state_size: int,
        *,
        r_min: float,
        r_max: float,
        max_phase: float,
        bidirectional: bool,
        dropout: float,
        impl: LRUImpl,
    ) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.lru = LRU(
            dim, state_size, r_min=r_min, r_max=r_max, max_phase=max_phase, bidirectional=bidirectional, impl=impl
        )
        self.glu = nn.Linear(dim, 2 * dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.lru(self.norm(x))  # (B, T, D)
        y = F.glu(self.glu(F.gelu(y)), dim=-1)  # (B, T, 2D) -> (B, T, D): W_1 y * sigmoid(W_2 y)
        return x + self.drop(y)


class PixelLRU(PixelClassifier):
    """Encoder, :class:`LRUBlock` s over the pixels, norm, pooling, linear classifier.

    Args:
        dim: block width; state_size: complex LRU states per block; depth: number of blocks.
        r_min, r_max, max_phase: the LRU's ring initialisation.
        pool: ``"mean"`` over the steps (the paper's) or ``"last"`` step.
        bidirectional: bidirectional LRUs (the whole image is known, so nothing forbids it).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        img_size: ImageSize,
        dim: int,
        state_size: int,
        depth: int,
        r_min: float,
        r_max: float,
        max_phase: float,
        pool: str,
        bidirectional: bool,
        dropout: float,
        permutation_seed: int | None,
        impl: LRUImpl,
    ) -> None:
        super().__init__()
        self._init_reader(
            num_classes=num_classes, in_chans=in_chans, img_size=img_size, pool=pool, permutation_seed=permutation_seed
        )
        self.encoder = nn.Linear(in_chans, dim)
        self.blocks = nn.Sequential(
            *(
                LRUBlock(
                    dim,
                    state_size,
                    r_min=r_min,
                    r_max=r_max,
                    max_phase=max_phase,
                    bidirectional=bidirectional,
                    dropout=dropout,
                    impl=impl,
                )
                for _ in range(depth)
            )
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))

    def sequence_features(self, seq: Tensor) -> Tensor:
        """(B, H*W, C) -> (B, D): the blocks' output, mean over the pixels (or the last pixel)."""
        x = self.encoder(seq)  # (B, H*W, D)
        x = self.norm(self.blocks(x))  # (B, H*W, D)
        return x.mean(1) if self.pool == "mean" else x[:, -1]


@register_model(
    task="classify",
    tiny={"hidden_size": 8, "state_size": 6, "num_layers": 2, "img_size": 5},
    renamed={"dim": "hidden_size", "depth": "num_layers"},  # the names before the naming scheme of CONTRIBUTING.md
)
def pixel_lru(
    *,
    num_classes: int = 10,
    in_chans: int = 1,
    img_size: ImageSize = 28,
    hidden_size: int = 64,
    state_size: int = 128,
    num_layers: int = 4,
    r_min: float = 0.9,
    r_max: float = 0.999,
    max_phase: float = math.pi,
    pool: str = "mean",
    bidirectional: bool = False,
    dropout: float = 0.0,
    permutation_seed: int | None = None,
    impl: LRUImpl = "auto",
) -> PixelLRU:
    """LRU blocks over the pixels one at a time (sequential MNIST); ``permutation_seed`` for permuted MNIST."""
    return PixelLRU(
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dim=hidden_size,
        state_size=state_size,
        depth=num_layers,
        r_min=r_min,
        r_max=r_max,
        max_phase=max_phase,
        pool=pool,
        bidirectional=bidirectional,
        dropout=dropout,
        permutation_seed=permutation_seed,
        impl=impl,
    )
