"""What every dataset carries: its task, its classes and the shape of its images."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from rnnvision.data.transforms import random_shift
from rnnvision.errors import UserError

SPLITS = ("train", "val", "test")
T = TypeVar("T")


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 file the user gave (labels, charset, lexicon); other bytes are one UserError line."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}") from None


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about a dataset that models and reports need.

    ``model_kwargs`` are the options a model builder takes from the data unless the config sets
    them (for example ``num_classes``, ``in_chans``, ``img_size``). ``charset`` lists the
    characters a text dataset's labels are written in, in the order of the model's output
    classes (for CTC models after the blank); checkpoints keep it, so they decode without the data.
    """

    name: str
    task: str
    class_names: tuple[str, ...] = ()
    in_chans: int = 1
    img_size: tuple[int, int] | None = None
    model_kwargs: dict = field(default_factory=dict)
    charset: str = ""


class InfoDataset(Dataset):
    """A dataset of this package: ``(input, target)`` items by index, a length, and its :class:`DatasetInfo`."""

    info: DatasetInfo

    if TYPE_CHECKING:

        def __len__(self) -> int: ...


class ArrayImageDataset(InfoDataset):
    """In-memory uint8 images (N, H, W) or (N, C, H, W) with integer labels.

    Items are ``(image, label)``: image float32 (C, H, W) in [0, 1], label int64. With
    ``max_shift > 0`` each item is shifted by a random whole number of pixels in [-s, s] along
    each axis (zero fill), the usual MNIST augmentation.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, info: DatasetInfo, *, max_shift: int = 0) -> None:
        if images.ndim == 3:
            images = images[:, None]
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8))  # (N, C, H, W), a writable copy
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.info = info
        self.max_shift = max_shift

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.images[index].float() / 255.0
        if self.max_shift:
            image = random_shift(image, self.max_shift)
        return image, self.labels[index]


def classification_info(
    name: str, class_names: list[str] | tuple[str, ...], *, in_chans: int, img_size: tuple[int, int]
) -> DatasetInfo:
    """DatasetInfo of a classification set; models built on it get its classes, channels and size."""
    size = (int(img_size[0]), int(img_size[1]))
    return DatasetInfo(
        name=name,
        task="classify",
        class_names=tuple(class_names),
        in_chans=in_chans,
        img_size=size,
        model_kwargs={"num_classes": len(class_names), "in_chans": in_chans, "img_size": size},
    )


def split_indices(n: int, *, val_size: int, test_size: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """A fixed seeded partition of ``range(n)`` into train / val (/ test) index arrays."""
    order = np.random.RandomState(seed).permutation(n)
    test = order[:test_size]
    val = order[test_size : test_size + val_size]
    train = order[test_size + val_size :]
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def split_fractions(
    items: Sequence[T], *, val_fraction: float, test_fraction: float = 0.0, seed: int = 0
) -> dict[str, list[T]]:
    """The seeded hold-out of the folder datasets: ``test_fraction`` and ``val_fraction`` of ``items``
    (each rounded to a whole count), ``train`` the rest; each part keeps the items' order."""
    n = len(items)
    parts = split_indices(n, val_size=int(round(n * val_fraction)), test_size=int(round(n * test_fraction)), seed=seed)
    return {name: [items[i] for i in index] for name, index in parts.items()}


def dataset_meta(info: DatasetInfo) -> dict[str, Any]:
    """What a checkpoint keeps of its dataset: enough to predict without the data."""
    meta = dataclasses.asdict(info)
    meta.pop("model_kwargs")
    return meta
