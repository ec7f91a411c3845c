"""What the segmentation datasets share: items, class facts, the ignore label, mask files.

An item is ``(image, mask)``: image float32 (C, H, W) in [0, 1], mask int64 (H, W) holding a
class index per pixel, or :data:`IGNORE_INDEX` for pixels that count in neither the loss nor the
metrics (CamVid's "void", for example). Readers map their own void label to it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from rnnvision.data.base import DatasetInfo
from rnnvision.data.transforms import open_image, pil_to_tensor
from rnnvision.errors import UserError

IGNORE_INDEX = 255


def segmentation_info(
    name: str, class_names: list[str] | tuple[str, ...], *, in_chans: int, img_size: tuple[int, int] | None
) -> DatasetInfo:
    """DatasetInfo of a segmentation set; models built on it get its classes and channels (any size works)."""
    size = None if img_size is None else (int(img_size[0]), int(img_size[1]))
    return DatasetInfo(
        name=name,
        task="segment",
        class_names=tuple(class_names),
        in_chans=in_chans,
        img_size=size,
        model_kwargs={"num_classes": len(class_names), "in_chans": in_chans},
    )


class ArraySegmentationDataset(Dataset):
    """In-memory uint8 images (N, C, H, W) and uint8 masks (N, H, W)."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, info: DatasetInfo) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        self.masks = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8))
        self.info = info

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index].float() / 255.0, self.masks[index].long()


def read_mask(path: Path) -> np.ndarray:
    """A single-channel class-index PNG (mode L or P) as uint8 (H, W); anything else raises UserError."""
    mask = open_image(path, keep_mode=True)
    if mask.mode not in ("L", "P"):
        raise UserError(f"{path} is a {mask.mode} image; masks must be single-channel class indices (PNG mode L or P)")
    return np.asarray(mask, dtype=np.uint8)


class FileSegmentationDataset(Dataset):
    """(image, mask) pairs read lazily from files, optionally resized to ``info.img_size``.

    ``relabel`` maps a mask's raw values (uint8 array) to class indices and IGNORE_INDEX.
    """

    def __init__(
        self, pairs: list[tuple[Path, Path]], info: DatasetInfo, *, relabel: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> None:
        self.pairs, self.info, self.relabel = pairs, info, relabel

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.pairs[index]
        image = open_image(image_path)
        mask = Image.fromarray(read_mask(mask_path))
        if mask.size != image.size:
            raise UserError(f"mask {mask_path} is {mask.size[0]}x{mask.size[1]}, its image {image_path} is {image.size[0]}x{image.size[1]}")
        size = self.info.img_size
        if size is not None and mask.size != (size[1], size[0]):
            mask = mask.resize((size[1], size[0]), Image.NEAREST)
        labels = np.asarray(mask)
        if self.relabel is not None:
            labels = self.relabel(labels)
        return pil_to_tensor(image, channels=self.info.in_chans, size=size), torch.from_numpy(labels.astype(np.int64))
