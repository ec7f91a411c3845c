"""Figures written as PNG files (matplotlib's Agg backend; no display needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from rnnvision.errors import UserError  # noqa: E402
from rnnvision.files import atomic_path  # noqa: E402
from rnnvision.outputs import image_format  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: Figure, path: Path) -> Path:
    """Save and close ``fig`` at ``path``, atomically, in the format its suffix names (PNG, PDF, SVG, ...)."""
    try:
        suffix = Path(path).suffix.lower()[1:]
        if suffix not in fig.canvas.get_supported_filetypes():
            raise UserError(f"{path}: no figure format is known for the suffix .{suffix}; use .png, .pdf or .svg")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def image_to_display(image: Tensor) -> tuple[np.ndarray, str | None]:
    """(C, H, W) in [0, 1] -> an array for imshow and its colour map."""
    array = image.detach().cpu().float().clamp(0, 1).numpy()
    if array.shape[0] == 1:
        return array[0], "gray"
    return array.transpose(1, 2, 0), None


def plot_curves(rows: list[dict[str, Any]], path: Path, *, metric: str) -> Path:
    """Training loss and validation loss/metric per epoch."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train")
    if all("val_loss" in r for r in rows):
        ax_loss.plot(epochs, [r["val_loss"] for r in rows], marker="o", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_metric.plot(epochs, [r.get(f"val_{metric}") for r in rows], marker="o", color="tab:green")
    ax_metric.set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_confusion(
    matrix: np.ndarray, class_names: list[str], path: Path, *, unit: str = "images", row_percent: bool = False
) -> Path:
    """Confusion matrix (rows: true class, columns: predicted) with counts in the cells.

    ``row_percent`` shows each row as percentages of its true class instead (for pixel counts).
    """
    k = len(class_names)
    total = int(matrix.sum())
    if row_percent:
        matrix = 100.0 * matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.55 * k))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=90 if max(map(len, class_names)) > 2 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion ({total} {unit}{', % of row' if row_percent else ''})")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            if round(matrix[i, j]):
                color = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, str(round(matrix[i, j])), ha="center", va="center", fontsize=7, color=color)
    return save_figure(fig, path)


def plot_image_grid(images: Tensor, titles: list[str], path: Path, *, highlight: list[bool] | None = None) -> Path:
    """A grid of (C, H, W) images with a title under each; highlighted titles are red."""
    n = len(images)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.9 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < n:
            array, cmap = image_to_display(images[index])
            ax.imshow(array, cmap=cmap, vmin=0, vmax=1)
            red = highlight is not None and highlight[index]
            ax.set_title(titles[index], fontsize=7, color="red" if red else "black")
    return save_figure(fig, path)


def plot_gates(image: Tensor, gates: dict[str, Tensor], path: Path, *, title: str = "") -> Path:
    """The image beside one heat map per sigmoid gate: rows = time steps (image rows), columns = units.

    ``gates`` maps gate names to (T, H) activations; tanh candidates (``cell``, ``candidate``)
    are left out so every panel shares one [0, 1] colour scale. Units (columns) are in one order for
    every panel, :func:`unit_order`: by the step at which their gates change most, so the picture reads
    as a staircase of units switching as the rows of the digit go by, with units that hardly change last.
    """
    names = [n for n in gates if n not in ("cell", "candidate")]
    order = unit_order([gates[n].detach().cpu().float() for n in names]) if names else None
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(2.4 * (1 + len(names)) + 0.8, 3.0), constrained_layout=True)
    array, cmap = image_to_display(image)
    steps = array.shape[0]
    axes[0].imshow(array, cmap=cmap, vmin=0, vmax=1)
    axes[0].set(title="image", ylabel="row = time step")
    shown = None
    for ax, name in zip(axes[1:], names):
        values = gates[name].detach().cpu().float().numpy()[:, order]  # (T, H), units reordered
        shown = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set(
            title=f"{name} gate", xlabel="unit, by row of largest change", yticks=range(0, steps, max(1, steps // 8))
        )
    if shown is not None:
        fig.colorbar(shown, ax=list(axes[1:]), fraction=0.03, label="activation")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def unit_order(gates: list[Tensor], *, still: float = 0.05) -> np.ndarray:
    """Column order of (T, H) gate maps: units sorted by the step where their gates change most (summed over
    the gates), earliest first; units whose gates never move by ``still`` or more go last, by their mean."""
    values = torch.stack(gates)  # (G, T, H)
    change = (values[:, 1:] - values[:, :-1]).abs().sum(dim=0) if values.shape[1] > 1 else torch.zeros_like(values[0])
    step = change.argmax(dim=0).numpy() + 1  # (H,) the step that ends the largest change
    largest = change.max(dim=0).values.numpy() if change.numel() else np.zeros(values.shape[-1])
    moving = largest >= still
    mean = values.mean(dim=(0, 1)).numpy()
    key = np.where(moving, step, values.shape[1] + 1).astype(float) + np.where(
        moving, -largest / (largest.max() + 1), mean / 2
    )
    return np.argsort(key, kind="stable")


def save_image_grid(images: Tensor, path: str | Path, *, nrow: int = 8, scale: int | None = None, pad: int = 1) -> Path:
    """Tile (N, C, H, W) images in [0, 1] into one image file (format from the suffix), ``nrow`` per row, each pixel ``scale`` x ``scale``
    (default: about 56 pixels per image side), ``pad`` pixels of mid-grey between them (no
    matplotlib: the file stays small)."""
    from PIL import Image

    array = images.detach().cpu().float().clamp(0, 1).numpy()  # (N, C, H, W)
    n, channels, height, width = array.shape
    scale = scale or max(1, round(56 / max(height, width)))
    cols, rows = min(nrow, n), math.ceil(n / nrow)
    cell_h, cell_w = height * scale + pad, width * scale + pad
    canvas = np.full((rows * cell_h + pad, cols * cell_w + pad, channels), 0.5, dtype=np.float32)
    for index in range(n):
        y, x = pad + (index // cols) * cell_h, pad + (index % cols) * cell_w
        tile = array[index].transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)  # (H*s, W*s, C)
        canvas[y : y + height * scale, x : x + width * scale] = tile
    pixels = np.round(canvas * 255).astype(np.uint8)
    picture = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)  # mode L or RGB
    fmt = image_format(path)  # the format the suffix names: PNG for .png, JPEG for .jpg, ...
    with atomic_path(path) as tmp:
        picture.save(tmp, format=fmt, **({"optimize": True} if fmt == "PNG" else {}))
    return Path(path)


def plot_gradient_flow(grad_norm: Tensor, gates: dict[str, Tensor], path: str | Path, *, title: str = "") -> Path:
    """||dL/dx_t|| against the step t (log scale), and under it the mean keep gate per step if given."""
    rows = 2 if gates else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 2.8 * rows), sharex=True, squeeze=False)
    steps = np.arange(1, len(grad_norm) + 1)
    values = grad_norm.detach().cpu().double().numpy()
    ax = axes[0, 0]
    positive = values > 0
    ax.semilogy(steps[positive], values[positive], lw=1)
    if not positive.all():  # exact zeros (underflow) cannot sit on a log axis: mark them on the floor
        floor = values[positive].min() if positive.any() else 1e-45
        ax.plot(steps[~positive], np.full((~positive).sum(), floor), "x", ms=2, color="tab:red", label="exactly 0")
        ax.legend(loc="upper left")
    ax.set(ylabel="mean ||dL/dx_t||", title=title or "gradient of the loss with respect to each input step")
    ax.grid(alpha=0.3, which="both")
    for name, value in gates.items():
        axes[1, 0].plot(steps, value.detach().cpu().numpy(), lw=1, label=f"mean {name} gate")
    if gates:
        axes[1, 0].set(ylabel="gate", ylim=(0, 1))
        axes[1, 0].legend(loc="lower left")
        axes[1, 0].grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step t")
    return save_figure(fig, Path(path))
