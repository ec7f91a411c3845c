"""Pictures of segmentations: class-colour masks (palette PNGs), overlays, legends, a sample grid, IoU bars.

Colours follow the PASCAL VOC palette (class 0 black, 1 dark red, 2 dark green, ...; the
ignore label 255 light grey), built from the bits of the class index, except for datasets with
colours of their own (CamVid: SegNet's colours, void black); :func:`palette_for` picks them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from torch import Tensor

from rnnvision.data.segmentation import IGNORE_INDEX
from rnnvision.files import atomic_path
from rnnvision.viz.plots import image_to_display, plt, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def palette_for(dataset: str | None) -> np.ndarray:
    """(256, 3) uint8 class colours for ``dataset``: its own where it has them, else :data:`PALETTE`."""
    if dataset == "camvid":
        from rnnvision.data.camvid import CLASS_COLOURS

        palette = PALETTE.copy()
        palette[: len(CLASS_COLOURS)] = CLASS_COLOURS
        palette[IGNORE_INDEX] = 0  # void
        return palette
    return PALETTE


def mask_to_pil(mask: np.ndarray, *, palette: np.ndarray = PALETTE) -> Image.Image:
    """(H, W) class indices -> a palette ('P' mode) image whose pixel values are the indices."""
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask, dtype=np.uint8).tobytes())
    image.putpalette(palette.reshape(-1).tolist())
    return image


def save_mask_png(mask: np.ndarray, path: Path, *, palette: np.ndarray = PALETTE) -> Path:
    """Write (H, W) class indices as a palette PNG, atomically."""
    with atomic_path(path) as tmp:
        mask_to_pil(mask, palette=palette).save(tmp, format="PNG")
    return Path(path)


def overlay(image: Tensor, mask: np.ndarray, *, alpha: float = 0.5, palette: np.ndarray = PALETTE) -> np.ndarray:
    """(C, H, W) image in [0, 1] and (H, W) classes -> (H, W, 3) uint8, the class colours blended over the image."""
    array, _ = image_to_display(image)
    rgb = np.repeat(array[..., None], 3, axis=-1) if array.ndim == 2 else array
    blended = (1 - alpha) * rgb * 255.0 + alpha * palette[mask].astype(np.float64)
    return blended.round().clip(0, 255).astype(np.uint8)


def save_overlay_png(image: Tensor, mask: np.ndarray, path: Path, *, palette: np.ndarray = PALETTE) -> Path:
    """Write :func:`overlay` as an RGB PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(overlay(image, mask, palette=palette)).save(tmp, format="PNG")
    return Path(path)


def _legend(
    fig: Figure, class_names: list[str], palette: np.ndarray, *, shares: list[float] | None = None, ncol: int = 6
) -> None:
    """A colour key of the classes (with their share of the pixels, if given) below the figure."""
    keep = [k for k in range(len(class_names)) if shares is None or shares[k] > 0]
    labels = [class_names[k] + ("" if shares is None else f" {100 * shares[k]:.1f}%") for k in keep]
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=palette[k] / 255.0, edgecolor="0.5", linewidth=0.5) for k in keep]
    fig.legend(handles, labels, loc="lower center", ncol=min(ncol, len(keep)), fontsize=7, frameon=False)


def plot_prediction(
    image: Tensor, mask: np.ndarray, class_names: list[str], path: Path, *, palette: np.ndarray = PALETTE
) -> Path:
    """The colour mask and the overlay side by side, with a legend of the classes found and their shares."""
    shares = (np.bincount(mask.reshape(-1), minlength=len(class_names))[: len(class_names)] / mask.size).tolist()
    height, width = mask.shape
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 4.0 * height / width + 0.9))
    for ax, shown, title in (
        (axes[0], palette[mask], "classes"),
        (axes[1], overlay(image, mask, palette=palette), "overlay"),
    ):
        ax.imshow(shown, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    _legend(fig, class_names, palette, shares=shares)
    fig.subplots_adjust(bottom=0.16, wspace=0.03)
    return save_figure(fig, path)


def plot_class_iou(
    per_class_iou: list[float | None], class_names: list[str], path: Path, *, palette: np.ndarray = PALETTE
) -> Path:
    """A bar per class: its IoU (classes with none defined are marked n/a), bars in the class colours."""
    values = [0.0 if v is None else v for v in per_class_iou]
    defined = [v for v in per_class_iou if v is not None]
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(class_names), 3.4))
    bars = ax.bar(range(len(values)), values, color=palette[: len(values)] / 255.0, edgecolor="0.3", linewidth=0.6)
    for bar, value in zip(bars, per_class_iou):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() + 0.01,
            "n/a" if value is None else f"{value:.2f}",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    if defined:
        ax.axhline(
            sum(defined) / len(defined),
            color="tab:red",
            linestyle="--",
            linewidth=1,
            label=f"mean IoU {sum(defined) / len(defined):.3f}",
        )
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xticks(
        range(len(values)), class_names, rotation=45 if max(map(len, class_names)) > 3 else 0, ha="right", fontsize=7
    )
    ax.set(ylim=(0, 1.08), ylabel="IoU", title="IoU per class")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def plot_segmentations(
    images: Tensor,
    truths: np.ndarray,
    predictions: np.ndarray | dict[str, np.ndarray],
    class_names: list[str],
    path: Path,
    *,
    palette: np.ndarray = PALETTE,
) -> Path:
    """One row per sample: image, true mask, predicted mask(s); a colour key of the classes below.

    ``predictions`` is one (N, H, W) array, or several keyed by the column title (one per model).
    """
    columns = {"predicted": predictions} if isinstance(predictions, np.ndarray) else dict(predictions)
    n, width = len(images), 2 + len(columns)
    aspect = images.shape[-2] / images.shape[-1]
    fig, axes = plt.subplots(n, width, figsize=(2.5 * width, 2.5 * aspect * n + 0.8), squeeze=False)
    for row in range(n):
        array, cmap = image_to_display(images[row])
        panels = [(array, cmap, "image"), (palette[truths[row]], None, "true")]
        panels += [(palette[masks[row]], None, title) for title, masks in columns.items()]
        for ax, (shown, colours, title) in zip(axes[row], panels):
            ax.imshow(shown, cmap=colours, vmin=0, vmax=1 if colours else None, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    _legend(fig, class_names, palette)
    return save_figure(fig, path)
