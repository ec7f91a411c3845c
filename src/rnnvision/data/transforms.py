"""Image loading and small augmentations shared by the datasets and the CLI.

Every image file is read here (:func:`open_image`), so every reader gets the same rules:

- at most :data:`MAX_PIXELS` pixels, checked from the header before anything is decoded, so a
  decompression bomb (a small file that decodes to gigabytes) is refused in one line;
- 8-bit grey (``L``) or RGB out, whatever the file holds: 16-bit and 32-bit integer images are
  scaled by their bit depth (65535 -> 255; not clipped), float images are read as [0, 1]; palette
  images through their palette; CMYK, YCbCr, LAB and HSV converted to RGB;
- transparency (RGBA, grey + alpha, palette with a transparent colour) is composited over a plain
  background that contrasts with the visible content: black behind bright content (MNIST-style
  white strokes), white behind dark content (text on paper).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from rnnvision.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
MAX_PIXELS = 50_000_000  # about 7000 x 7000: far above any dataset here, far below a bomb's gigapixels
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def open_image(path: str | Path, *, keep_mode: bool = False) -> Image.Image:
    """Open and decode an image file: 8-bit ``L`` or ``RGB`` (or the file's own mode with ``keep_mode``).

    A missing file, a file PIL cannot decode and an image over :data:`MAX_PIXELS` raise :class:`UserError`.
    """
    image = _read(path, decode=True)
    return image if keep_mode else to_8bit(image)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header (same checks as :func:`open_image`)."""
    return _read(path, decode=False).size


def _read(path: str | Path, *, decode: bool) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise Image.DecompressionBombError
                if not decode:
                    return image
                image.load()
                return image.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"{path} is too large to read safely (more than {MAX_PIXELS:,} pixels, or a decompression bomb); "
            "shrink the image first"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a decoder fed an untrusted file can fail in many ways
        raise UserError(
            f"{path} is not an image PIL can read ({exc.__class__.__name__}); give a PNG or JPEG file"
        ) from None


def to_8bit(image: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit ``L`` (grey sources) or ``RGB``, scaled by bit depth, alpha composited."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode in _SIXTEEN_BIT or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scaled = values / 65535.0 if mode != "F" else values
        return Image.fromarray(np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8), "L")
    if mode == "1":
        return image.convert("L")
    grey = mode in ("LA", "La") or (mode in ("P", "PA") and _palette_is_grey(image))
    if mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in image.info:
        if mode == "La":
            image = image.convert("LA")
        elif mode == "RGBa":
            image = image.convert("RGBA")
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0  # (H, W, 4)
        return _composite(rgba, grey=grey)
    converted = image.convert("RGB")
    return converted.convert("L") if grey else converted


def _palette_is_grey(image: Image.Image) -> bool:
    colours = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    return bool((colours == colours[:, :1]).all())


def _composite(rgba: np.ndarray, *, grey: bool) -> Image.Image:
    """(H, W, 4) in [0, 1] over black or white, whichever contrasts with the visible content."""
    colour, alpha = rgba[..., :3], rgba[..., 3:]
    luma = colour @ np.array([0.299, 0.587, 0.114])  # ITU-R 601, as PIL's L
    weight = alpha[..., 0].sum()
    background = 0.0 if weight == 0 or (luma * alpha[..., 0]).sum() / weight > 0.5 else 1.0
    out = alpha * colour + (1.0 - alpha) * background
    array = np.rint(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    image = Image.fromarray(array, "RGB")
    return image.convert("L") if grey else image


def pil_to_tensor(image: Image.Image, *, channels: int, size: tuple[int, int] | None = None) -> Tensor:
    """PIL image -> float32 (C, H, W) in [0, 1], converted to ``channels`` (1 or 3) and resized to (H, W)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    image = to_8bit(image).convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
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
