"""Turn a photo or drawing of one digit into an MNIST-style 28x28 image (``predict --preprocess mnist``).

MNIST was built this way (LeCun et al., "The MNIST database of handwritten digits"): each
NIST digit was size-normalised to fit a 20x20 box, keeping its aspect ratio, with anti-aliasing,
then centred in a 28x28 field by its centre of mass. A model trained on MNIST expects exactly that:
white strokes on black, the ink filling about 20 pixels, the centre of mass in the middle. A
user's digit (dark ink on white paper, anywhere in a large photo) is far from it; the steps below
bring it there:

1. grey, and inverted when the background is light (the border's median decides);
2. the background level subtracted, so paper grain or a grey backdrop does not count as ink;
3. cropped to the ink's bounding box (pixels above a fraction of the brightest);
4. resized so the longer side is 20 pixels (Lanczos, as anti-aliased as MNIST's);
5. pasted into 28x28 so that the centre of mass falls on pixel (14, 14), where MNIST's lies.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from rnnvision.errors import UserError

FIELD = 28  # MNIST's image side
BOX = 20  # the side of the box the digit is fitted into
INK_FRACTION = 0.25  # a pixel is ink when brighter than this fraction of the brightest, after step 2


def mnist_style(image: Image.Image) -> Image.Image:
    """An ``L`` image of 28x28: the digit of ``image``, prepared as MNIST's digits were (module doc)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if np.median(_border(grey)) > 127.0:  # dark ink on light paper: MNIST is light ink on black
        grey = 255.0 - grey
    grey = np.clip(grey - np.median(_border(grey)), 0.0, None)
    peak = float(grey.max())
    if peak <= 0.0:
        raise UserError("--preprocess mnist found no digit in the image (it is one flat colour)")
    rows, cols = np.nonzero(grey > INK_FRACTION * peak)
    crop = grey[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] * (255.0 / peak)
    height, width = crop.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    digit = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.LANCZOS))
    digit = np.clip(digit, 0.0, 255.0)
    cy, cx = _centre_of_mass(digit)
    top = min(max(round(FIELD // 2 - cy), 0), FIELD - digit.shape[0])
    left = min(max(round(FIELD // 2 - cx), 0), FIELD - digit.shape[1])
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return Image.fromarray(np.rint(field).astype(np.uint8), "L")


def _border(grey: np.ndarray) -> np.ndarray:
    """The pixels of the outermost rows and columns (the background, for a photo of one digit)."""
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def _centre_of_mass(weights: np.ndarray) -> tuple[float, float]:
    """(row, column) index of the intensity-weighted centre (MNIST's lies at index (14, 14): measured
    over its test set, 13.99 and 14.00 on average)."""
    total = float(weights.sum())
    rows = np.arange(weights.shape[0], dtype=np.float64)
    cols = np.arange(weights.shape[1], dtype=np.float64)
    return float(weights.sum(axis=1) @ rows) / total, float(weights.sum(axis=0) @ cols) / total
