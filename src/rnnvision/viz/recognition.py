"""Pictures for text recognition: predictions beside their labels, and CTC alignments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from rnnvision.viz.plots import image_to_display, plt, save_figure


def plot_text_predictions(images: list[Tensor], predicted: list[str], targets: list[str], path: Path) -> Path:
    """One row per (C, H, W) image of its own width, titled ``pred / true``; wrong ones in red."""
    widest = max(img.shape[-1] for img in images)
    fig, axes = plt.subplots(len(images), 1, figsize=(max(3.0, widest / 40), 0.75 * len(images) + 0.3), squeeze=False)
    for ax, image, pred, true in zip(axes[:, 0], images, predicted, targets):
        array, cmap = image_to_display(image)
        ax.imshow(array, cmap=cmap, vmin=0, vmax=1, extent=(0, image.shape[-1], image.shape[-2], 0))
        ax.set_xlim(0, widest)
        ax.axis("off")
        ax.set_title(f"{pred!r} / true {true!r}", fontsize=7, loc="left", color="black" if pred == true else "red")
    return save_figure(fig, path)


def plot_ctc_explanation(
    images: list[Tensor],
    texts: list[str],
    details: list[dict[str, Any]],
    charset: str,
    path: Path,
    *,
    titles: list[str] | None = None,
) -> Path:
    """Each image with its characters' boxes (and their probabilities above) and, under it, the best
    class of every column and the CTC alignment of its text (the columns emitting each character).

    ``details[i]`` holds ``best`` (T,) and ``alignment`` (T,) class indices (0 = blank, class
    ``k`` = ``charset[k - 1]``; alignment None if the text cannot be aligned), ``probability``
    and ``spans``: per character its box ``[start, stop)`` in columns and its probability. Column ``t`` covers
    pixels ``[t * s, (t + 1) * s)`` with s = width / T. ``titles`` (e.g. file names) lead each title.
    """

    def char(k: int) -> str:
        return "·" if k == 0 else charset[k - 1]

    widest = max(img.shape[-1] for img in images)
    fig, axes = plt.subplots(len(images), 1, figsize=(max(4.0, widest / 22), 1.9 * len(images)), squeeze=False)
    for i, (ax, image, text, detail) in enumerate(zip(axes[:, 0], images, texts, details)):
        height, width = image.shape[-2:]
        steps = len(detail["best"])
        stride = width / max(steps, 1)
        array, cmap = image_to_display(image)
        ax.imshow(array, cmap=cmap, vmin=0, vmax=1, extent=(0, width, height, 0))
        best_y, align_y = height + 0.3 * height, height + 0.75 * height
        for t, k in enumerate(detail["best"]):
            ax.text(
                (t + 0.5) * stride,
                best_y,
                char(k),
                ha="center",
                va="center",
                fontsize=7,
                color="0.6" if k == 0 else "tab:blue",
                family="monospace",
            )
            ax.axvline(t * stride, color="0.85", lw=0.4, ymin=0, ymax=1)
        for colour, (c, (start, stop, probability)) in enumerate(zip(text, detail.get("spans", []))):
            x0, x1 = start * stride, stop * stride  # the character's box
            ax.add_patch(
                plt.Rectangle((x0 + 0.5, 0.5), x1 - x0 - 1, height - 1, fill=False, lw=1.2, color=f"C{colour % 10}")
            )
            ax.text(
                (x0 + x1) / 2,
                -0.08 * height,
                f"{c} {probability:.2f}" if x1 - x0 >= 0.9 * height else c,
                ha="center",
                va="bottom",
                fontsize=7,
                color=f"C{colour % 10}",
            )
        if detail["alignment"] is not None:  # the columns that emit each character
            start, colour = 0, 0
            path_ = detail["alignment"] + [-1]
            for t in range(1, len(path_)):
                if path_[t] != path_[t - 1]:
                    k = path_[start]
                    if k != 0:
                        ax.add_patch(
                            plt.Rectangle(
                                (start * stride, align_y - 0.18 * height),
                                (t - start) * stride,
                                0.36 * height,
                                color=f"C{colour % 10}",
                                alpha=0.35,
                                lw=0,
                            )
                        )
                        ax.text((start + t) / 2 * stride, align_y, char(k), ha="center", va="center", fontsize=8)
                        colour += 1
                    start = t
        ax.set_xlim(0, max(width, stride * steps))
        ax.set_ylim(align_y + 0.3 * height, -0.35 * height)
        ax.set_yticks([height / 2, best_y, align_y], ["image", "best per column", "CTC alignment"], fontsize=7)
        ax.set_xticks([])
        lead = f"{titles[i]}: " if titles else ""
        ax.set_title(f"{lead}{text!r}  (p = {detail['probability']:.3f})", fontsize=9, loc="left")
    fig.tight_layout()
    return save_figure(fig, path)
