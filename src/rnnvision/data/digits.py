"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images, no network needed.

The fixed split: the rows of ``sklearn.datasets.load_digits()`` are shuffled with
``numpy.random.RandomState(0)``; the first 360 are ``test``, the next 180 ``val`` and the
remaining 1,257 ``train``. Pixel values 0..16 are scaled to 0..255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnvision.data.base import ArrayImageDataset, classification_info, split_indices
from rnnvision.data.registry import register_dataset

TEST_SIZE, VAL_SIZE = 360, 180


def load_digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 (N, 8, 8) in 0..255, and their labels (N,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def digit_split_indices() -> dict[str, np.ndarray]:
    """Indices of the documented train / val / test split."""
    return split_indices(1797, val_size=VAL_SIZE, test_size=TEST_SIZE, seed=0)


@register_dataset("digits", task="classify")
def digits(
    *, split: str, root: str | Path | None = None, download: bool = False, max_shift: int = 0
) -> ArrayImageDataset:
    """The embedded 8x8 digits (``root`` and ``download`` are accepted and unused)."""
    images, labels = load_digit_arrays()
    index = digit_split_indices()[split]
    info = classification_info("digits", [str(d) for d in range(10)], in_chans=1, img_size=(8, 8))
    return ArrayImageDataset(images[index], labels[index], info, max_shift=max_shift if split == "train" else 0)
