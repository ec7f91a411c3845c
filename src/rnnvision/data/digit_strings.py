"""Lines of handwritten digits composed from real digit images, for sequence recognition.

Each line holds ``min_length`` to ``max_length`` digits. Every digit is cropped to its ink,
scaled to a height drawn per line (and jittered per digit), shifted vertically at random and
placed after a random gap (negative gaps make neighbours touch), so line widths vary. Training
lines can also rotate and shear every digit at random (``rotate`` degrees, ``shear``), the affine
augmentation that helps convolutional digit readers most (Simard et al. 2003); val and test lines
never do.

Sources (``source``): ``mnist`` (the MNIST files under the data root: train lines from the first
55,000 training digits, val lines from the last 5,000, test lines from the 10,000 test digits),
``sklearn`` (the 1,797 bundled 8x8 digits, split as the ``digits`` dataset: no network needed),
or ``auto`` (MNIST when its files are present, else sklearn). Train, val and test lines are
therefore built from disjoint digit images.

Reproducibility: val and test line ``i`` depend only on ``(seed, split, i)``; train lines are
drawn afresh on every read from torch's global RNG, which the trainer seeds per epoch, so every
epoch sees new lines and a run with the same seed sees the same ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from rnnvision.data.base import DatasetInfo, InfoDataset
from rnnvision.data.digits import digit_split_indices, load_digit_arrays
from rnnvision.data.idx import MNIST, mnist_split
from rnnvision.data.registry import register_dataset
from rnnvision.data.root import data_root
from rnnvision.data.text import DIGITS, MIN_WIDTH, item_rng, text_info
from rnnvision.errors import UserError

_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


def _digit_source(
    source: str, split: str, root: str | Path | None, download: bool
) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 digit images (N, h, w), labels (N,), and the source used."""
    if source == "auto":
        present = all((data_root(root) / "mnist" / name).is_file() for name in MNIST.md5)
        source = "mnist" if present or download else "sklearn"
    if source == "mnist":
        images, labels = mnist_split(MNIST.fetch(root, download=download), split)
        return images, labels.astype(np.int64), "mnist"
    if source != "sklearn":
        raise UserError(f"digit-strings: source must be auto, mnist or sklearn, got {source!r}")
    images, labels = load_digit_arrays()
    index = digit_split_indices()[split]
    return images[index], labels[index], "sklearn"


def _ink_crop(image: np.ndarray) -> np.ndarray:
    """The smallest box holding every pixel above a faint threshold (the whole image if blank)."""
    rows, cols = np.nonzero(image > 20)
    if not len(rows):
        return image
    return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def distort_glyph(glyph: np.ndarray, rng: np.random.Generator, *, rotate: float, shear: float) -> np.ndarray:
    """Rotate ``glyph`` by up to ±``rotate`` degrees and shear it by up to ±``shear`` about its centre,
    then crop it to its ink again. A (h, w) uint8 image in, a new one out (nothing is cut off)."""
    angle = np.deg2rad(rng.uniform(-rotate, rotate))
    slant = rng.uniform(-shear, shear)
    # forward map (x, y) -> M (x, y) about the centre: a shear along x, then a rotation
    forward = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) @ np.array(
        [[1.0, slant], [0.0, 1.0]]
    )
    h, w = glyph.shape
    corners = forward @ (np.array([[0, w, 0, w], [0, 0, h, h]], dtype=float) - [[w / 2], [h / 2]])
    out_w, out_h = (int(np.ceil(corners[i].max() - corners[i].min())) + 2 for i in (0, 1))
    inverse = np.linalg.inv(forward)  # PIL asks, for every output pixel, where to read the input
    offset = np.array([w / 2, h / 2]) - inverse @ np.array([out_w / 2, out_h / 2])
    coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
    image = Image.fromarray(glyph).transform(
        (out_w, out_h), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR
    )
    return _ink_crop(np.asarray(image))


def compose_line(
    glyphs: list[np.ndarray], rng: np.random.Generator, *, height: int, min_gap: int, max_gap: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay ink-cropped digit images side by side on a (height, W) uint8 canvas, white on black;
    returns the canvas and each digit's columns ``[x0, x1)``."""
    line_scale = rng.uniform(0.55, 0.85) * height  # ink height of this line's digits
    placed = []
    for glyph in glyphs:
        h = int(np.clip(round(line_scale * rng.uniform(0.9, 1.1)), 6, height))
        w = max(1, int(round(glyph.shape[1] * h / glyph.shape[0])))
        resized = np.asarray(Image.fromarray(glyph).resize((w, h), Image.Resampling.BILINEAR))
        cell = max(w, int(round(0.4 * h)))  # narrow digits ("1") still get a few columns
        top = int(rng.integers(0, height - h + 1))
        placed.append((resized, top, (cell - w) // 2, cell))
    gaps = rng.integers(min_gap, max_gap + 1, size=max(0, len(glyphs) - 1))
    left, right = (int(v) for v in rng.integers(0, 7, size=2))
    width = left + right + sum(p[3] for p in placed) + int(gaps.sum())
    canvas = np.zeros((height, max(width, 1)), dtype=np.uint8)
    x = left
    spans = []
    for i, (resized, top, offset, cell) in enumerate(placed):
        h, w = resized.shape
        region = canvas[top : top + h, x + offset : x + offset + w]
        np.maximum(region, resized[:, : region.shape[1]], out=region)
        spans.append((x + offset, x + offset + region.shape[1]))
        x += cell + (int(gaps[i]) if i < len(gaps) else 0)
    return canvas, spans


class DigitStringDataset(InfoDataset):
    """Items ``(image, text)``: image float32 (1, height, W) white digits on black, text its digits."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        info: DatasetInfo,
        *,
        size: int,
        split: str,
        seed: int,
        min_length: int,
        max_length: int,
        height: int,
        min_gap: int,
        max_gap: int,
        rotate: float = 0.0,
        shear: float = 0.0,
    ) -> None:
        self.glyphs = [_ink_crop(image) for image in images]
        self.labels, self.info, self.size, self.split, self.seed = labels, info, size, split, seed
        self.min_length, self.max_length, self.height = min_length, max_length, height
        self.min_gap, self.max_gap = min_gap, max_gap
        self.distort = split == "train" and (rotate > 0 or shear > 0)
        self.rotate, self.shear = rotate, shear

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        canvas, text, _ = self.render(index)
        return torch.from_numpy(canvas[None].astype(np.float32) / 255.0), text

    def render(self, index: int) -> tuple[np.ndarray, str, list[tuple[int, int]]]:
        """Line ``index`` as a (height, W) uint8 image, its text, and each digit's columns ``[x0, x1)``."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        if self.split == "train":
            rng = item_rng()
        else:
            rng = np.random.default_rng([self.seed, _SPLIT_CODE[self.split], index])
        length = int(rng.integers(self.min_length, self.max_length + 1))
        picks = rng.integers(0, len(self.glyphs), size=length)
        glyphs = [self.glyphs[i] for i in picks]
        if self.distort:
            glyphs = [distort_glyph(glyph, rng, rotate=self.rotate, shear=self.shear) for glyph in glyphs]
        canvas, spans = compose_line(glyphs, rng, height=self.height, min_gap=self.min_gap, max_gap=self.max_gap)
        assert self.info.img_size is not None  # set in __init__
        max_width = self.info.img_size[1]
        if canvas.shape[1] < MIN_WIDTH:
            canvas = np.pad(canvas, ((0, 0), (0, MIN_WIDTH - canvas.shape[1])))
        elif canvas.shape[1] > max_width:
            scale = max_width / canvas.shape[1]
            canvas = np.asarray(Image.fromarray(canvas).resize((max_width, self.height), Image.Resampling.BILINEAR))
            spans = [(int(x0 * scale), int(np.ceil(x1 * scale))) for x0, x1 in spans]
        text = "".join(str(int(self.labels[i])) for i in picks)
        return canvas, text, spans


@register_dataset("digit-strings", task="recognize")
def digit_strings(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    source: Literal["auto", "mnist", "sklearn"] = "auto",
    min_length: int = 1,
    max_length: int = 8,
    train_size: int = 20000,
    val_size: int = 2000,
    test_size: int = 10000,
    height: int = 32,
    min_gap: int = -1,
    max_gap: int = 6,
    rotate: float = 0.0,
    shear: float = 0.0,
    seed: int = 0,
) -> DigitStringDataset:
    """Lines of 1..8 handwritten digits from MNIST (or sklearn's digits when MNIST is absent);
    ``rotate`` (max degrees) and ``shear`` (max slant) distort the digits of training lines."""
    if not 1 <= min_length <= max_length:
        raise UserError(f"digit-strings: need 1 <= min_length <= max_length, got {min_length} and {max_length}")
    if not -2 <= min_gap <= max_gap:
        raise UserError(f"digit-strings: need -2 <= min_gap <= max_gap, got {min_gap} and {max_gap}")
    if not (0 <= rotate <= 45 and 0 <= shear <= 1):
        raise UserError(
            f"digit-strings: need 0 <= rotate <= 45 (degrees) and 0 <= shear <= 1, got {rotate} and {shear}"
        )
    images, labels, _ = _digit_source(source, split, root, download)
    size = {"train": train_size, "val": val_size, "test": test_size}[split]
    # room for max_length square digits; the rare wider line is squeezed to this width
    max_width = 12 + max_length * height + (max_length - 1) * max(max_gap, 0)
    info = text_info("digit-strings", DIGITS, in_chans=1, height=height, max_width=max_width)
    return DigitStringDataset(
        images,
        labels,
        info,
        size=size,
        split=split,
        seed=seed,
        min_length=min_length,
        max_length=max_length,
        height=height,
        min_gap=min_gap,
        max_gap=max_gap,
        rotate=rotate,
        shear=shear,
    )
