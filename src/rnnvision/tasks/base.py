"""What a task gives the one trainer: a loss, summable evaluation statistics, metrics, reports.

Evaluation is split into per-batch *sums* (``eval_stats``) and a final step (``finalize``) so
that statistics from the shards of a DDP run, or from many batches, combine by addition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import default_collate

from rnnvision.data.base import InfoDataset
from rnnvision.errors import UserError

Batch = Any


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register a task under ``cls.name``; a duplicate name raises."""
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    _TASKS[cls.name] = cls
    return cls


def get_task_class(name: str) -> type[Task]:
    if name not in _TASKS:
        raise UserError(f"unknown task {name!r}; tasks are {', '.join(sorted(_TASKS))}")
    return _TASKS[name]


class Task:
    """Base class of the task families; subclasses set ``name`` and ``metric``."""

    name: str = ""
    metric: str = ""  # the validation metric that picks the best checkpoint
    higher_is_better: bool = True

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Task:
        """Build the task from the dataset facts a checkpoint keeps (class names, charset, ...)."""
        return cls()

    @classmethod
    def class_weights_from(cls, dataset: InfoDataset, *, method: str) -> list[float]:
        """Loss weights per class computed from the training split (``train.class_weights``)."""
        raise UserError(f"train.class_weights is not available for {cls.name} models")

    def collate(self, items: list) -> Batch:
        return default_collate(items)

    def training_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """Mean loss over the batch."""
        raise NotImplementedError

    def eval_stats(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Sums over the batch (including ``n``) that :meth:`finalize` turns into metrics."""
        raise NotImplementedError

    def finalize(self, stats: dict[str, Tensor]) -> dict[str, Any]:
        """Metrics (JSON-able) from summed statistics."""
        raise NotImplementedError

    def check_data(self, model: nn.Module, dataset: InfoDataset) -> None:
        """Raise :class:`UserError` before training if ``dataset`` holds items ``model`` cannot learn."""

    def describe_epoch(self, train_loss: float, val: dict[str, Any]) -> str:
        """The per-epoch log line's middle: the training loss and the validation metric, with units where they differ."""
        return f"train_loss {train_loss:.4f}  val_{self.metric} {val[self.metric]:.4f}"

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def write_report(
        self, model: nn.Module, dataset: InfoDataset, stats: dict[str, Tensor], out_dir: Path, *, device: torch.device
    ) -> list[Path]:
        """Pictures that explain a trained model on ``dataset``; returns the files written."""
        return []

    def prepare_predict(self, names: list[str], meta: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Check ``predict``'s options once, before any image is read (``names``: every image's
        name); returns the keyword arguments :meth:`predict_images` and :meth:`explain` take.

        Raises :class:`UserError` for an option this task does not have.
        """
        if options.get("out_dir"):
            raise UserError(
                f"{self.name} predict writes no per-image pictures; --out takes a results.jsonl or results.csv here"
            )
        given = [k for k, v in options.items() if v]
        if given:
            raise UserError(f"{self.name} predict takes no {', '.join(_option(k) for k in given)} option")
        return {}

    def predict_images(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        *,
        device: torch.device,
    ) -> list[dict[str, Any]]:
        """One JSON-able result per image, as one batch (``rnnvision predict``, ``rnnvision.predict``, the server).

        A task with predict options adds them here as keyword parameters with defaults; the callers
        pass what :meth:`prepare_predict` returned as keywords (``**prepared``).

        Args:
            images: PIL images of any size and mode (converted as the training data was).
            names: each image's name (its file), the ``file`` of its result.
        """
        raise UserError(f"predict is not available for {self.name} models")

    def explain(
        self,
        model: nn.Module,
        images: list[Image.Image],
        names: list[str],
        meta: dict[str, Any],
        path: Path,
        *,
        device: torch.device,
    ) -> Path:
        """A picture explaining the predictions of ``images`` (``predict --explain``); returns ``path``."""
        raise UserError(f"{self.name} predict has no --explain")

    @staticmethod
    def format_prediction(result: dict[str, Any]) -> str:
        """One human-readable line for a :meth:`predict_images` result."""
        return str(result)


def _option(key: str) -> str:
    """``out_dir`` -> ``--out``, ``beam_width`` -> ``--beam-width``: the option as the CLI spells it."""
    return "--out" if key == "out_dir" else "--" + key.replace("_", "-")
