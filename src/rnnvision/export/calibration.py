"""Calibration inputs for int8 exports: the first images of a checkpoint's own training split.

int8's static convolutions (:func:`rnnvision.export.quantize.quantize_onnx`) need the ranges their
activations take; these batches, collated by the checkpoint's task exactly as training saw them,
give them.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from rnnvision.errors import UserError


def calibration_batches(
    state: dict[str, Any], data_dir: str | None, *, items: int = 64, batch: int = 16, download: bool = False
) -> list[dict[str, Tensor]]:
    """The first ``items`` images of the training split named in ``state["config"]``, as batches of
    the exported graph's inputs by input name (``images``; recognition also ``widths``)."""
    from rnnvision.data import build_dataset
    from rnnvision.tasks import make_task

    if items < 1:
        raise UserError(f"--calibrate takes a positive number of training images, got {items}")
    if "config" not in state:
        raise UserError("this checkpoint names no training data to calibrate on; export without --calibrate")
    options = dict(state["config"]["data"])
    data = build_dataset(options.pop("name"), split="train", root=data_dir, download=download, **options)
    items = min(items, len(data))
    task = make_task(state["task"], state["meta"])
    names = ("images", "widths") if state["task"] == "recognize" else ("images",)
    batches = []
    for start in range(0, items, batch):
        collated = task.collate([data[i] for i in range(start, min(start + batch, items))])
        # a recognition batch is a dict; the other tasks' are (images, targets)
        batches.append({n: collated[n] for n in names} if isinstance(collated, dict) else {"images": collated[0]})
    return batches
