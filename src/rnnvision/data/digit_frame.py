"""Frame a photo or drawing of one digit as the training digits are framed (``predict --preprocess
mnist``, and the web page's drawn digits).

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

Other sizes scale the same frame (the box is 20/28 of the side); images of 16 pixels or fewer
(the 8x8 digits, whose digits fill the image) get the ink filling the height, centred.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from rnnvision.errors import UserError

MNIST_FIELD, MNIST_BOX = 28, 20  # MNIST's image side and the box its digits are fitted into
SMALL = 16  # up to this side, the digit fills the image (the 8x8 digits)
INK_FRACTION = 0.25  # a pixel is ink when brighter than this fraction of the brightest, after step 2


def frame_digit(image: Image.Image, size: tuple[int, int] = (MNIST_FIELD, MNIST_FIELD)) -> Image.Image:
    """An ``L`` image of ``size`` (height, width): the digit of ``image``, framed as MNIST's (module doc)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    if np.median(_border(grey)) > 127.0:  # dark ink on light paper: MNIST is light ink on black
        grey = 255.0 - grey
    grey = np.clip(grey - np.median(_border(grey)), 0.0, None)
    peak = float(grey.max())
    if peak <= 0.0:
        raise UserError("no digit found in the image (it is one flat colour)")
    rows, cols = np.nonzero(grey > INK_FRACTION * peak)
    crop = grey[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] * (255.0 / peak)
    field_h, field_w = size
    small = min(size) <= SMALL
    box = (field_h, field_w) if small else (field_h * MNIST_BOX / MNIST_FIELD, field_w * MNIST_BOX / MNIST_FIELD)
    scale = min(box[0] / crop.shape[0], box[1] / crop.shape[1])
    resized = (max(1, min(field_w, round(crop.shape[1] * scale))), max(1, min(field_h, round(crop.shape[0] * scale))))
    digit = np.clip(
        np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(resized, Image.Resampling.LANCZOS)), 0.0, 255.0
    )
    if small:  # centred by its box
        top, left = (field_h - digit.shape[0]) // 2, (field_w - digit.shape[1]) // 2
    else:  # centre of mass on the middle pixel
        cy, cx = _centre_of_mass(digit)
        top = min(max(round(field_h // 2 - cy), 0), field_h - digit.shape[0])
        left = min(max(round(field_w // 2 - cx), 0), field_w - digit.shape[1])
    field = np.zeros(size, dtype=np.float32)
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
