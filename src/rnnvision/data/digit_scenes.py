"""``digit-scenes``: canvases holding a few handwritten digits, labelled per pixel. No network needed.

Each canvas (``canvas_size`` square, black) holds ``min_digits``..``max_digits`` digits at random
positions whose boxes do not overlap; each digit is resized to ``digit_size`` square (bilinear).
A pixel's label is its digit's class + 1 where the digit's ink is at least half intensity
(128 of 255), and 0 (background) everywhere else, so the classes are ``background, 0, ..., 9``.

Digits come from ``source``: ``"digits"`` (scikit-learn's bundled 8x8 digits, the default, always
available) or ``"mnist"`` (28x28 MNIST from the data root). The train, val and test canvases draw
their digits from the source's own disjoint train, val and test splits (for ``digits`` the fixed
split of :mod:`rnnvision.data.digits`, for ``mnist`` that of :mod:`rnnvision.data.idx`), and
every canvas is a fixed function of ``seed`` and the split.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import cast

import numpy as np
from PIL import Image

from rnnvision.data.base import ArrayImageDataset
from rnnvision.data.digits import digit_split_indices, load_digit_arrays
from rnnvision.data.registry import build_dataset, register_dataset
from rnnvision.data.segmentation import ArraySegmentationDataset, segmentation_info
from rnnvision.errors import UserError

CLASS_NAMES = ("background",) + tuple(str(d) for d in range(10))
INK = 128  # a digit pixel at least this bright is labelled with the digit's class
SOURCES = ("digits", "mnist")
_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}


@functools.lru_cache(maxsize=8)
def _digit_pool(
    source: str, split: str, root: str | Path | None, download: bool, digit_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 digits (N, S, S) of one split of ``source`` resized to S = digit_size, and labels (N,); cached, read-only."""
    if source == "digits":
        images, labels = load_digit_arrays()
        index = digit_split_indices()[split]
        images, labels = images[index], labels[index]
    else:
        mnist = cast(ArrayImageDataset, build_dataset("mnist", split=split, root=root, download=download))
        images, labels = mnist.images[:, 0].numpy(), mnist.labels.numpy()
    if images.shape[-1] != digit_size:
        images = np.stack(
            [np.asarray(Image.fromarray(d).resize((digit_size, digit_size), Image.Resampling.BILINEAR)) for d in images]
        )
    images, labels = images.astype(np.uint8), labels.astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def _free_spots(rng: np.random.RandomState, canvas: int, size: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` non-overlapping size x size boxes inside the canvas (rejection sampling)."""
    spots: list[tuple[int, int]] = []
    for _ in range(1000):
        y, x = rng.randint(0, canvas - size + 1, size=2)
        if all(abs(y - y2) >= size or abs(x - x2) >= size for y2, x2 in spots):
            spots.append((int(y), int(x)))
            if len(spots) == count:
                break
    return spots


def make_digit_scenes(
    digits: np.ndarray, labels: np.ndarray, *, count: int, canvas_size: int, min_digits: int, max_digits: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` canvases (N, 1, S, S) uint8 and their masks (N, S, S) uint8 from a pool of digits (M, s, s)."""
    rng = np.random.RandomState(seed)
    size = digits.shape[-1]
    images = np.zeros((count, 1, canvas_size, canvas_size), dtype=np.uint8)
    masks = np.zeros((count, canvas_size, canvas_size), dtype=np.uint8)
    for n in range(count):
        spots = _free_spots(rng, canvas_size, size, rng.randint(min_digits, max_digits + 1))
        for (y, x), k in zip(spots, rng.randint(0, len(digits), size=len(spots))):
            images[n, 0, y : y + size, x : x + size] = digits[k]
            masks[n, y : y + size, x : x + size] = np.where(digits[k] >= INK, labels[k] + 1, 0)
    return images, masks


@register_dataset("digit-scenes", task="segment")
def digit_scenes(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    source: str = "digits",
    canvas_size: int = 48,
    digit_size: int = 16,
    min_digits: int = 2,
    max_digits: int = 4,
    train_images: int = 4000,
    val_images: int = 500,
    test_images: int = 1000,
    seed: int = 0,
) -> ArraySegmentationDataset:
    """Canvases of a few handwritten digits, 11 classes per pixel (background, 0-9); embedded."""
    if source not in SOURCES:
        raise UserError(f"digit-scenes source must be one of {', '.join(SOURCES)}, got {source!r}")
    if not 1 <= min_digits <= max_digits or digit_size > canvas_size:
        raise UserError("digit-scenes needs 1 <= min_digits <= max_digits and digit_size <= canvas_size")
    if max_digits > (canvas_size // digit_size) ** 2:
        raise UserError(f"{max_digits} digits of {digit_size}px may not fit a {canvas_size}px canvas; lower max_digits")
    count = {"train": train_images, "val": val_images, "test": test_images}[split]
    digits, labels = _digit_pool(source, split, root, download, digit_size)
    images, masks = make_digit_scenes(
        digits,
        labels,
        count=count,
        canvas_size=canvas_size,
        min_digits=min_digits,
        max_digits=max_digits,
        seed=seed * 3 + _SPLIT_SEED[split],
    )
    info = segmentation_info("digit-scenes", CLASS_NAMES, in_chans=1, img_size=(canvas_size, canvas_size))
    return ArraySegmentationDataset(images, masks, info)
