"""What the text-recognition datasets share: charsets, resizing to a fixed height, augmentation.

A recognition item is ``(image, text)``: image float32 (C, H, W) in [0, 1] with H the dataset's
fixed height and W its own width (aspect ratio kept, clamped to ``[MIN_WIDTH, max_width]``),
text a ``str`` over the dataset's charset. The recognize task encodes texts to class indices and
right-pads the images of a batch.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch import Tensor

from rnnvision.data.base import DatasetInfo, InfoDataset
from rnnvision.data.transforms import open_image, pil_to_tensor, to_8bit
from rnnvision.errors import UserError

DIGITS = string.digits
LOWER_ALNUM = string.digits + string.ascii_lowercase  # 36: the usual case-insensitive scene-text charset
ALNUM = string.digits + string.ascii_lowercase + string.ascii_uppercase  # 62
MIN_WIDTH = 16  # narrower images are stretched to this width (4 columns after the CRNN's 4x downsampling)


def text_info(name: str, charset: str, *, in_chans: int, height: int, max_width: int) -> DatasetInfo:
    """DatasetInfo of a recognition set: a CTC model on it gets ``len(charset) + 1`` classes.

    ``img_size`` is (height, max_width): images are resized to the height and at most that wide,
    which is also how ``rnnvision predict`` prepares an image file.
    """
    if max_width < MIN_WIDTH:
        raise UserError(f"{name}: max_width must be at least {MIN_WIDTH}, got {max_width}")
    if len(set(charset)) != len(charset) or not charset:
        raise UserError(f"{name}: the charset must be non-empty without repeated characters, got {charset!r}")
    return DatasetInfo(
        name=name,
        task="recognize",
        in_chans=in_chans,
        img_size=(height, max_width),
        charset=charset,
        model_kwargs={"num_classes": len(charset) + 1, "in_chans": in_chans, "img_height": height},
    )


def check_texts(texts: Iterable[str], charset: str, *, source: str) -> None:
    """Raise :class:`UserError` listing every character of ``texts`` that is not in ``charset``."""
    unknown = sorted(set("".join(texts)) - set(charset))
    if unknown:
        shown = " ".join(repr(c) for c in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise UserError(
            f"{source}: labels use {len(unknown)} character(s) missing from the charset: {shown}; "
            "add them to the charset (or its file) or fix the labels"
        )


def fit_height(image: Image.Image, *, height: int, max_width: int) -> Image.Image:
    """Resize to ``height`` keeping the aspect ratio, width clamped to ``[MIN_WIDTH, max_width]``."""
    w, h = image.size
    width = int(round(w * height / max(h, 1)))
    width = min(max(width, MIN_WIDTH), max_width)
    if (width, height) == image.size:
        return image
    return image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)


def word_tensor(image: Image.Image, *, channels: int, height: int, max_width: int) -> Tensor:
    """PIL image -> float32 (C, height, W) in [0, 1], aspect ratio kept, MIN_WIDTH <= W <= max_width."""
    converted = to_8bit(image).convert("L" if channels == 1 else "RGB")
    return pil_to_tensor(fit_height(converted, height=height, max_width=max_width), channels=channels)


def augment_word(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Mild photometric and geometric jitter of a word crop (RGB or L), the same mode back.

    Random crop/pad of the borders, rotation up to 3 degrees, horizontal shear, horizontal
    stretch, blur, contrast change and, rarely, inversion.
    """
    mode = image.mode
    image = image.convert("RGB")
    w, h = image.size
    # crop or pad each border by up to 8 % of the height
    dx0, dx1, dy0, dy1 = (int(v) for v in rng.integers(-round(0.08 * h), round(0.08 * h) + 1, size=4))
    image = image.crop((dx0, dy0, w - dx1, h - dy1)) if w - dx0 - dx1 > 4 and h - dy0 - dy1 > 4 else image
    fill = tuple(int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
    shear = rng.uniform(-0.25, 0.25)
    w, h = image.size
    image = image.transform(
        (w + int(abs(shear) * h), h),
        Image.Transform.AFFINE,
        (1, shear, -shear * h if shear > 0 else 0, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
        fillcolor=fill,
    )
    image = image.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BILINEAR, expand=True, fillcolor=fill)
    stretch = rng.uniform(0.8, 1.25)
    image = image.resize((max(4, int(image.size[0] * stretch)), image.size[1]), Image.Resampling.BILINEAR)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * h / 32))
    array = np.asarray(image, dtype=np.float32)
    array = (array - array.mean()) * rng.uniform(0.6, 1.2) + array.mean() + rng.uniform(-20, 20)
    if rng.random() < 0.1:
        array = 255.0 - array
    image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    return image.convert(mode)


def item_rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's global RNG (which the trainer seeds every epoch)."""
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))


class WordFileDataset(InfoDataset):
    """(image, text) pairs read lazily from image files; ``augment`` jitters every read."""

    def __init__(self, samples: list[tuple[Path, str]], info: DatasetInfo, *, augment: bool = False) -> None:
        if info.img_size is None:
            raise ValueError(f"{info.name}: a text dataset needs img_size (height, largest width)")
        self.samples, self.info, self.augment = samples, info, augment
        self.height, self.max_width = info.img_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        path, text = self.samples[index]
        image = open_image(path)
        if self.augment:
            image = augment_word(image, item_rng())
        return word_tensor(image, channels=self.info.in_chans, height=self.height, max_width=self.max_width), text
