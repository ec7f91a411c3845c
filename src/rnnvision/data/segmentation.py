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

from rnnvision.data.base import DatasetInfo, InfoDataset
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


class ArraySegmentationDataset(InfoDataset):
    """In-memory uint8 images (N, C, H, W) and uint8 masks (N, H, W)."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, info: DatasetInfo) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        self.masks = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8))
        self.info = info

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index].float() / 255.0, self.masks[index].long()

    def mask(self, index: int) -> np.ndarray:
        """uint8 (H, W) class indices of item ``index``."""
        return self.masks[index].numpy()


def read_mask(path: Path) -> np.ndarray:
    """A single-channel class-index PNG (mode L or P) as uint8 (H, W); anything else raises UserError."""
    mask = open_image(path, keep_mode=True)
    if mask.mode not in ("L", "P"):
        raise UserError(f"{path} is a {mask.mode} image; masks must be single-channel class indices (PNG mode L or P)")
    return np.asarray(mask, dtype=np.uint8)


class FileSegmentationDataset(InfoDataset):
    """(image, mask) pairs read from files, optionally resized to ``info.img_size``.

    ``relabel`` maps a mask's raw values (uint8 array) to class indices and IGNORE_INDEX.
    ``read_pair`` (image path, mask path) -> (PIL image, uint8 mask array) replaces the default
    reader (an image file and a class-index PNG of the same size). With ``cache`` (the default)
    each pair is decoded once, on first use, and kept in memory as uint8 arrays (CamVid's 367
    training images at 480x360: about 250 MB), so later epochs spend no time decoding files;
    with DataLoader workers each worker keeps its own cache.
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        info: DatasetInfo,
        *,
        relabel: Callable[[np.ndarray], np.ndarray] | None = None,
        read_pair: Callable[[Path, Path], tuple[Image.Image, np.ndarray]] | None = None,
        cache: bool = True,
    ) -> None:
        self.pairs, self.info, self.relabel = pairs, info, relabel
        self.read_pair = read_pair or _read_pair
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 image (H, W, C) at ``info.img_size`` and uint8 mask (H, W) of class indices / IGNORE_INDEX."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        image, labels = self.read_pair(*self.pairs[index])
        size = self.info.img_size
        if size is not None and labels.shape != tuple(size):
            labels = np.asarray(Image.fromarray(labels).resize((size[1], size[0]), Image.Resampling.NEAREST))
        if self.relabel is not None:
            labels = self.relabel(labels)
        array = pil_to_tensor(image, channels=self.info.in_chans, size=size).mul(255).round().byte()  # (C, H, W)
        decoded = (array.permute(1, 2, 0).numpy(), np.ascontiguousarray(labels, dtype=np.uint8))
        if self.cache is not None:
            self.cache[index] = decoded
        return decoded

    def mask(self, index: int) -> np.ndarray:
        """uint8 (H, W) class indices of item ``index`` (IGNORE_INDEX where unlabelled)."""
        return self._decode(index)[1]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, labels = self._decode(index)
        return torch.from_numpy(image).permute(2, 0, 1).float() / 255.0, torch.from_numpy(labels.astype(np.int64))


def _read_pair(image_path: Path, mask_path: Path) -> tuple[Image.Image, np.ndarray]:
    """An image file and its class-index mask PNG, which must have the same size."""
    image, labels = open_image(image_path), read_mask(mask_path)
    if labels.shape != (image.size[1], image.size[0]):
        raise UserError(
            f"mask {mask_path} is {labels.shape[1]}x{labels.shape[0]}, its image {image_path} is {image.size[0]}x{image.size[1]}"
        )
    return image, labels
