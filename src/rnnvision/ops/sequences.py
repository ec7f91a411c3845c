"""Images as sequences, and back.

An image batch (B, C, H, W) becomes a batch of sequences (B, T, F) for a recurrent layer:

==========  ============  ===========  ======================================================
reader      T             F            step t holds
==========  ============  ===========  ======================================================
rows        H             C * W        row t, channels side by side (row-by-row MNIST)
columns     W             C * H        column t
pixels      H * W         C            pixel t in raster order (sequential MNIST, Le et al. 2015)
pixels +    H * W         C            pixel ``perm[t]`` (permuted MNIST: one fixed, seeded
permutation                            permutation shared by every image)
patches     (H/p)(W/p)    C * p * p    the t-th non-overlapping p x p patch, raster order
==========  ============  ===========  ======================================================

Every ``image_to_*`` has an inverse ``*_to_image`` so a per-step output can be laid back over
the image (for example the gate activations of a row LSTM).
"""

from __future__ import annotations

import torch
from torch import Tensor

READERS = ("rows", "columns", "pixels", "patches")


def image_to_rows(images: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H, C*W)."""
    b, c, h, w = images.shape
    return images.permute(0, 2, 1, 3).reshape(b, h, c * w)


def rows_to_image(seq: Tensor, channels: int) -> Tensor:
    """(B, H, C*W) -> (B, C, H, W)."""
    b, h, cw = seq.shape
    return seq.reshape(b, h, channels, cw // channels).permute(0, 2, 1, 3)


def image_to_columns(images: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, W, C*H)."""
    b, c, h, w = images.shape
    return images.permute(0, 3, 1, 2).reshape(b, w, c * h)


def columns_to_image(seq: Tensor, channels: int) -> Tensor:
    """(B, W, C*H) -> (B, C, H, W)."""
    b, w, ch = seq.shape
    return seq.reshape(b, w, channels, ch // channels).permute(0, 2, 3, 1)


def pixel_permutation(num_pixels: int, seed: int) -> Tensor:
    """The fixed permutation of permuted MNIST: a seeded shuffle of ``range(num_pixels)``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(num_pixels, generator=generator)


def image_to_pixels(images: Tensor, permutation: Tensor | None = None) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C), raster order, then reordered by ``permutation`` if given."""
    b, c, h, w = images.shape
    seq = images.reshape(b, c, h * w).transpose(1, 2)  # (B, H*W, C)
    return seq if permutation is None else seq[:, permutation.to(seq.device)]


def pixels_to_image(seq: Tensor, height: int, width: int, permutation: Tensor | None = None) -> Tensor:
    """(B, H*W, C) -> (B, C, H, W); undoes :func:`image_to_pixels` with the same permutation."""
    if permutation is not None:
        seq = seq[:, torch.argsort(permutation.to(seq.device))]
    b, t, c = seq.shape
    return seq.transpose(1, 2).reshape(b, c, height, width)


def image_to_patches(images: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) -> (B, (H/p)*(W/p), C*p*p); H and W must be multiples of p."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {patch}")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)  # (B, C, h', p, w', p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, h', w', C, p, p)
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)


def patches_to_image(seq: Tensor, height: int, width: int, patch: int) -> Tensor:
    """(B, (H/p)*(W/p), C*p*p) -> (B, C, H, W)."""
    b, _, f = seq.shape
    c = f // (patch * patch)
    x = seq.reshape(b, height // patch, width // patch, c, patch, patch)  # (B, h', w', C, p, p)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(b, c, height, width)


def sequence_shape(reader: str, channels: int, height: int, width: int, patch: int = 1) -> tuple[int, int]:
    """(T, F) of the sequences that ``reader`` makes from (C, H, W) images."""
    shapes = {
        "rows": (height, channels * width),
        "columns": (width, channels * height),
        "pixels": (height * width, channels),
        "patches": ((height // patch) * (width // patch), channels * patch * patch),
    }
    if reader not in shapes:
        raise ValueError(f"unknown reader {reader!r}; choose one of {READERS}")
    return shapes[reader]


def image_to_sequence(images: Tensor, reader: str, *, patch: int = 1, permutation: Tensor | None = None) -> Tensor:
    """Dispatch to the ``image_to_*`` adapter named by ``reader``."""
    if reader == "rows":
        return image_to_rows(images)
    if reader == "columns":
        return image_to_columns(images)
    if reader == "pixels":
        return image_to_pixels(images, permutation)
    if reader == "patches":
        return image_to_patches(images, patch)
    raise ValueError(f"unknown reader {reader!r}; choose one of {READERS}")
