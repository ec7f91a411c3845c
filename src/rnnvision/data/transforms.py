"""Image loading and small augmentations shared by the datasets and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from rnnvision.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def open_image(path: str | Path) -> Image.Image:
    """Open an image file fully; a missing or non-image file raises :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{path} is not an image PIL can read ({exc.__class__.__name__}); give a PNG or JPEG file") from None


def pil_to_tensor(image: Image.Image, *, channels: int, size: tuple[int, int] | None = None) -> Tensor:
    """PIL image -> float32 (C, H, W) in [0, 1], converted to ``channels`` (1 or 3) and resized to (H, W)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy()).float() / 255.0


def load_image(path: str | Path, *, channels: int, size: tuple[int, int] | None = None) -> Tensor:
    """Read an image file as float32 (C, H, W) in [0, 1] with the given channels and size."""
    return pil_to_tensor(open_image(path), channels=channels, size=size)


def random_shift(image: Tensor, max_shift: int) -> Tensor:
    """Shift (C, H, W) by whole pixels drawn uniformly from [-max_shift, max_shift] per axis, zero fill."""
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,)).tolist()
    shifted = torch.zeros_like(image)
    h, w = image.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    shifted[..., yd, xd] = image[..., ys, xs]
    return shifted
