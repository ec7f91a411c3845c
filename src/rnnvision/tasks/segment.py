"""Semantic segmentation: per-pixel cross-entropy, pixel accuracy, IoU, masks and overlays.

Every pixel labelled :data:`~rnnvision.data.segmentation.IGNORE_INDEX` (255) counts in neither
the loss nor the metrics. Evaluation sums one confusion matrix over all pixels (rows: true
class, columns: predicted), so batches and DDP shards add up exactly; from it:

- pixel accuracy = correctly labelled pixels / labelled pixels;
- IoU of class k = TP_k / (TP_k + FP_k + FN_k); ``None`` for a class that appears neither in
  the labels nor in the predictions;
- mean IoU = the mean over the classes whose IoU is defined;
- foreground IoU (datasets whose class 0 is named ``background``): IoU of "any class but
  background", the usual figure for figure-ground sets such as Weizmann Horse.

With ``class_weights`` the loss weights each pixel by its true class's weight; ``median_frequency``
computes them from the training masks (Eigen & Fergus 2015, as used by SegNet):
``freq(c)`` = pixels of class c / labelled pixels of the images in which c appears, and
``weight(c) = median(freq) / freq(c)``, so rare classes (poles, signs) weigh more. The weights
are stored in the checkpoint's ``meta`` and used again when a run resumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import default_collate

from rnnvision.data.base import InfoDataset
from rnnvision.data.segmentation import IGNORE_INDEX
from rnnvision.data.transforms import pil_to_tensor
from rnnvision.errors import UserError
from rnnvision.outputs import prepare_output_dir
from rnnvision.tasks.base import Batch, Task, register_task


def confusion_matrix(labels: Tensor, predicted: Tensor, num_classes: int) -> Tensor:
    """(K, K) int64 counts of (true, predicted) over the pixels not labelled IGNORE_INDEX."""
    valid = labels != IGNORE_INDEX
    labels, predicted = labels[valid], predicted[valid]
    if labels.numel() and int(labels.max()) >= num_classes:
        raise UserError(f"a mask holds label {int(labels.max())}, but the model has {num_classes} classes")
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_metrics(confusion: Tensor) -> dict[str, Any]:
    """Pixel accuracy, mean IoU and per-class IoU (None where undefined) of a summed confusion matrix."""
    conf = confusion.double()
    true_positive = conf.diag()
    union = conf.sum(dim=1) + conf.sum(dim=0) - true_positive
    per_class = [float(tp / u) if u > 0 else None for tp, u in zip(true_positive, union)]
    defined = [v for v in per_class if v is not None]
    total = float(conf.sum())
    return {
        "pixel_accuracy": float(true_positive.sum()) / total if total else 0.0,
        "mean_iou": sum(defined) / len(defined) if defined else 0.0,
        "per_class_iou": per_class,
    }


def class_frequencies(masks: Iterable[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: its labelled pixels, and the labelled pixels of the images it appears in (int64 (K,) each)."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    for mask in masks:
        counts = np.bincount(np.asarray(mask).reshape(-1), minlength=IGNORE_INDEX + 1)
        if counts[num_classes:IGNORE_INDEX].any():
            raise UserError(
                f"a mask holds label {int(np.flatnonzero(counts[num_classes:IGNORE_INDEX])[0]) + num_classes}, "
                f"but there are {num_classes} classes"
            )
        counts = counts[:num_classes]
        pixels += counts
        image_pixels += np.where(counts > 0, counts.sum(), 0)
    return pixels, image_pixels


def median_frequency_weights(pixels: np.ndarray, image_pixels: np.ndarray) -> list[float]:
    """Median frequency balancing: median(freq) / freq(c); 0 for a class that never appears."""
    present = image_pixels > 0
    if not present.any():
        raise UserError("median frequency balancing needs labelled pixels; the training masks hold none")
    freq = np.where(present, pixels / np.maximum(image_pixels, 1), 0.0)
    median = float(np.median(freq[present]))
    return [median / f if f > 0 else 0.0 for f in freq.tolist()]


def dataset_masks(dataset: InfoDataset) -> Iterator[np.ndarray]:
    """The un-augmented masks of a segmentation dataset, one (H, W) array at a time."""
    read = getattr(dataset, "mask", None)
    for index in range(len(dataset)):
        yield read(index) if read is not None else dataset[index][1].numpy()


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile offsets along one axis: every ``tile - overlap`` pixels, the last one flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return starts + [length - tile]


def _kept(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Per tile, the [begin, end) it contributes: neighbours split their overlap at its middle."""
    bounds = [0] + [(starts[i] + tile + starts[i + 1]) // 2 for i in range(len(starts) - 1)] + [length]
    return list(zip(bounds[:-1], bounds[1:]))


def segment_full(
    model: nn.Module, images: Tensor, *, tile: tuple[int, int] | None = None, overlap: int | None = None
) -> Tensor:
    """Logits (B, K, H, W) of full-resolution images (B, C, H, W).

    Without ``tile``: one pass over the whole image (the segmenters here take any size). With
    ``tile`` (H_t, W_t): overlapping tiles of that size, each sharing ``overlap`` pixels (default:
    a quarter of the tile's shorter side) with the next, each tile's logits kept only in its part nearer to its centre than to the neighbour's
    (the overlap-tile strategy of U-Net, Ronneberger et al. 2015), so every kept pixel has at
    least ``overlap // 2`` pixels of context on each inner side. A model whose receptive field
    reaches no further than that gives exactly the one-pass logits.
    """
    if tile is None:
        return model(images)
    height, width = images.shape[-2:]
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    overlap = min(tile) // 4 if overlap is None else overlap
    if overlap >= min(tile_h, tile_w) and (tile_h < height or tile_w < width):
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile_h}x{tile_w}")
    rows, cols = _tile_starts(height, tile_h, overlap), _tile_starts(width, tile_w, overlap)
    out: Tensor | None = None
    for top, (row_begin, row_end) in zip(rows, _kept(rows, tile_h, height)):
        for left, (col_begin, col_end) in zip(cols, _kept(cols, tile_w, width)):
            logits = model(images[:, :, top : top + tile_h, left : left + tile_w])  # (B, K, tile_h, tile_w)
            if out is None:
                out = logits.new_zeros(images.shape[0], logits.shape[1], height, width)
            out[:, :, row_begin:row_end, col_begin:col_end] = logits[
                :, :, row_begin - top : row_end - top, col_begin - left : col_end - left
            ]
    assert out is not None  # at least one tile
    return out


class MirrorAveraged(nn.Module):
    """Test-time augmentation by the horizontal mirror: the mean of a segmenter's logits on each image
    and (mirrored back) on its mirror image, (B, C, H, W) -> (B, K, H, W); twice the model's time.

    A left-right sweep and its right-left twin see a pixel with different context, and a scene
    mirrored is still a scene (the training crops were flipped too); averaging the two is the
    usual flip test of segmentation benchmarks. Only for evaluation: ``rnnvision eval --mirror``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        mirrored = self.model(images.flip(-1)).flip(-1)  # (B, K, H, W), each pixel back in its place
        return (self.model(images) + mirrored) / 2


def foreground_iou(confusion: Tensor) -> float:
    """IoU of "not class 0" (all foreground classes merged) from a (K, K) confusion matrix; 0 when undefined."""
    conf = confusion.double()
    both = float(conf[1:, 1:].sum())
    union = both + float(conf[0, 1:].sum()) + float(conf[1:, 0].sum())
    return both / union if union else 0.0


@register_task
class SegmentationTask(Task):
    name = "segment"
    metric = "mean_iou"
    higher_is_better = True

    def __init__(self, class_names: list[str] | tuple[str, ...], *, class_weights: list[float] | None = None) -> None:
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        if class_weights is not None and len(class_weights) != self.num_classes:
            raise ValueError(f"{len(class_weights)} class weights for {self.num_classes} classes")
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> SegmentationTask:
        return cls(class_names=meta["class_names"], class_weights=meta.get("class_weights"))

    @classmethod
    def class_weights_from(cls, dataset: InfoDataset, *, method: str) -> list[float]:
        """Loss weights per class computed from the training masks (``median_frequency``)."""
        if method != "median_frequency":
            raise UserError(f"unknown class_weights {method!r}; segmentation offers median_frequency")
        return median_frequency_weights(*class_frequencies(dataset_masks(dataset), len(dataset.info.class_names)))

    def collate(self, items: list) -> Batch:
        sizes = {tuple(image.shape[-2:]) for image, _ in items}
        if len(sizes) > 1:
            raise UserError(
                f"images in one batch differ in size ({', '.join(f'{h}x{w}' for h, w in sorted(sizes))}); set data.img_size"
            )
        return default_collate(items)

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        images, masks = batch
        logits = model(images)  # (B, K, H, W)
        if not (masks != IGNORE_INDEX).any():
            return logits.sum() * 0.0  # nothing labelled in this batch
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, logits.dtype)
        return F.cross_entropy(logits, masks, weight=weight, ignore_index=IGNORE_INDEX)

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        images, masks = batch
        predicted = model(images).argmax(dim=1)  # (B, H, W)
        return {"confusion": confusion_matrix(masks, predicted, self.num_classes), "n": torch.tensor(len(images))}

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        metrics = iou_metrics(stats["confusion"])
        if self.class_names[0].lower() == "background":
            metrics["foreground_iou"] = foreground_iou(stats["confusion"])
        return {**metrics, "n": int(stats["n"])}

    def write_report(
        self, model: nn.Module, dataset: InfoDataset, stats: dict[str, Tensor], out_dir: Path, *, device: torch.device
    ) -> list[Path]:
        """confusion.png (% of each true class), class_iou.png (IoU bars), segmentations.png (samples)."""
        from rnnvision.viz.plots import plot_confusion
        from rnnvision.viz.segmentation import palette_for, plot_class_iou, plot_segmentations

        palette = palette_for(dataset.info.name)
        confusion = stats["confusion"].cpu().numpy()
        written = [
            plot_confusion(confusion, self.class_names, out_dir / "confusion.png", unit="pixels", row_percent=True)
        ]
        per_class = iou_metrics(stats["confusion"].cpu())["per_class_iou"]
        written.append(plot_class_iou(per_class, self.class_names, out_dir / "class_iou.png", palette=palette))
        count = min(6, len(dataset))
        images, masks = self.collate([dataset[i] for i in range(count)])
        model.eval()
        with torch.no_grad():
            predicted = model(images.to(device)).argmax(dim=1).cpu().numpy()
        path = out_dir / "segmentations.png"
        written.append(plot_segmentations(images, masks.numpy(), predicted, self.class_names, path, palette=palette))
        return written

    def prepare_predict(
        self,
        names: list[str],
        meta: dict[str, Any],
        *,
        out_dir: str | None = None,
        explain: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """``out_dir``: a folder for each image's mask, overlay and legend (created, or reused when ours)."""
        if explain:
            raise UserError("segmentation predict has no --explain; use --out DIR for masks and overlays")
        super().prepare_predict(names, meta, **options)
        stems = [Path(name).stem for name in names]
        if out_dir and len(set(stems)) < len(stems):
            twice = sorted({s for s in stems if stems.count(s) > 1})
            raise UserError(
                f"two images are named {twice[0]}: their masks would overwrite each other in --out; rename one"
            )
        if out_dir:
            prepare_output_dir(out_dir, kind="predict")
        return {"out_dir": out_dir}

    def predict_images(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        *,
        device: torch.device,
        out_dir: str | None = None,
    ) -> list[dict[str, Any]]:
        """Per-pixel classes of each image; with ``out_dir`` per image: ``<stem>_mask.png`` (palette
        PNG of class indices, in the dataset's colours), ``<stem>_overlay.png`` and ``<stem>_legend.png``
        (colour mask and overlay with a key of the classes and their shares).

        Images are resized to the training size when the dataset had one (else taken at full
        resolution, whatever crops the model was trained on), and the predicted mask is resized
        back (nearest) to the image's own size. Images of one input size run as one batch. A model
        with a fixed ``input_size`` (H, W) is run on overlapping tiles of that size
        (:func:`segment_full`); the segmenters here take any size.
        """
        from rnnvision.viz.segmentation import palette_for, plot_prediction, save_mask_png, save_overlay_png

        size = tuple(meta["img_size"]) if meta.get("img_size") else None
        tile = getattr(model, "input_size", None)  # a segmenter that needs a fixed size is tiled
        palette = palette_for(meta.get("name"))
        originals = [
            pil_to_tensor(image, channels=meta["in_chans"]) for image in images
        ]  # (C, H, W) at each image's size
        inputs = [pil_to_tensor(image, channels=meta["in_chans"], size=size) for image in images] if size else originals
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(inputs):
            by_size.setdefault(tuple(image.shape), []).append(i)
        classes: list[np.ndarray] = [np.zeros(0)] * len(images)
        model.eval()
        for members in by_size.values():
            with torch.no_grad():
                logits = segment_full(
                    model, torch.stack([inputs[i] for i in members]).to(device), tile=tile
                )  # (B, K, h, w)
            for i, predicted in zip(members, logits.argmax(dim=1).cpu().numpy().astype(np.uint8)):
                classes[i] = predicted  # (h, w)
        results = []
        for name, original, mask in zip(names, originals, classes):
            if mask.shape != original.shape[-2:]:
                mask = np.asarray(
                    Image.fromarray(mask).resize((original.shape[2], original.shape[1]), Image.Resampling.NEAREST)
                )
            counts = np.bincount(mask.reshape(-1), minlength=self.num_classes)
            result = {
                "file": name,
                "size": list(mask.shape),
                "classes": {self.class_names[k]: round(float(c) / mask.size, 6) for k, c in enumerate(counts) if c},
            }
            if out_dir:
                stem, out = Path(name).stem, Path(out_dir)
                result["mask"] = str(save_mask_png(mask, out / f"{stem}_mask.png", palette=palette))
                result["overlay"] = str(save_overlay_png(original, mask, out / f"{stem}_overlay.png", palette=palette))
                result["legend"] = str(
                    plot_prediction(original, mask, self.class_names, out / f"{stem}_legend.png", palette=palette)
                )
            results.append(result)
        return results

    @staticmethod
    def format_prediction(result: dict[str, Any]) -> str:
        shares = ", ".join(
            f"{name} {100 * share:.1f}%" for name, share in sorted(result["classes"].items(), key=lambda kv: -kv[1])
        )
        written = f"; wrote {result['mask']}, {result['overlay']} and {result['legend']}" if "mask" in result else ""
        return f"{result['file']}: {shares}{written}"
