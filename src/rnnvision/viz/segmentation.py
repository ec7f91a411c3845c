"""Pictures of segmentations: class-colour masks (palette PNGs), overlays, and a sample grid.

Colours follow the PASCAL VOC palette (class 0 black, 1 dark red, 2 dark green, ...; the
ignore label 255 light grey), built from the bits of the class index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from rnnvision.files import atomic_path
from rnnvision.viz.plots import image_to_display, plt, save_figure


def voc_palette() -> np.ndarray:
    """(256, 3) uint8 colours: the bits of each index spread over the high bits of R, G and B."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (r, g, b)
    return palette


PALETTE = voc_palette()


def mask_to_pil(mask: np.ndarray) -> Image.Image:
    """(H, W) class indices -> a palette ('P' mode) image whose pixel values are the indices."""
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(PALETTE.reshape(-1).tolist())
    return image


def save_mask_png(mask: np.ndarray, path: Path) -> Path:
    """Write (H, W) class indices as a palette PNG, atomically."""
    with atomic_path(path) as tmp:
        mask_to_pil(mask).save(tmp, format="PNG")
    return Path(path)


def overlay(image: Tensor, mask: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
    """(C, H, W) image in [0, 1] and (H, W) classes -> (H, W, 3) uint8, the class colours blended over the image."""
    array, _ = image_to_display(image)
    rgb = np.repeat(array[..., None], 3, axis=-1) if array.ndim == 2 else array
    blended = (1 - alpha) * rgb * 255.0 + alpha * PALETTE[mask].astype(np.float64)
    return blended.round().clip(0, 255).astype(np.uint8)


def save_overlay_png(image: Tensor, mask: np.ndarray, path: Path) -> Path:
    """Write :func:`overlay` as an RGB PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(overlay(image, mask)).save(tmp, format="PNG")
    return Path(path)


def plot_segmentations(
    images: Tensor, truths: np.ndarray, predictions: np.ndarray, class_names: list[str], path: Path
) -> Path:
    """One row per sample: image, true mask, predicted mask; a colour key of the classes below."""
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.4 * n + 0.8), squeeze=False)
    for row in range(n):
        array, cmap = image_to_display(images[row])
        panels = ((array, cmap, "image"), (PALETTE[truths[row]], None, "true"), (PALETTE[predictions[row]], None, "predicted"))
        for ax, (shown, colours, title) in zip(axes[row], panels):
            ax.imshow(shown, cmap=colours, vmin=0, vmax=1 if colours else None, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=PALETTE[k] / 255.0) for k in range(len(class_names))]
    fig.legend(handles, class_names, loc="lower center", ncol=min(6, len(class_names)), fontsize=7, frameon=False)
    return save_figure(fig, path)
