"""Joint augmentation of (image, mask) pairs for segmentation of photographs.

:class:`SegAugment` draws, per sample, from a generator seeded by ``(seed, epoch, index)``:

1. a random scale ``s`` in ``scale`` (both sides multiplied by ``s``; image bilinear with
   antialiasing, mask nearest-neighbour at the same pixel centres, so the two stay aligned);
2. photometric jitter of the image only, in this fixed order: brightness (``x * b``), contrast
   (``(x - mean grey) * c + mean grey``), saturation (``grey + (x - grey) * s``), each factor
   uniform in ``[1 - jitter, 1 + jitter]``, then clamped to [0, 1];
3. a random ``crop`` (H, W); an image smaller than the crop is first padded on the bottom and
   right, the image with 0 and the mask with the ignore label, so padding counts nowhere;
4. a horizontal flip of both with probability 1/2 when ``hflip``.

Ignored pixels (void) stay ignored through every step: nearest-neighbour never invents a label.
The same ``(seed, epoch, index)`` always gives the same sample, whichever process draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from rnnvision.data.base import InfoDataset
from rnnvision.data.segmentation import IGNORE_INDEX, ArraySegmentationDataset, FileSegmentationDataset
from rnnvision.errors import UserError

_GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights


@dataclass(frozen=True)
class SegAugment:
    """Random scale, photometric jitter, crop (with void padding) and horizontal flip; all optional."""

    scale: tuple[float, float] = (1.0, 1.0)
    crop: tuple[int, int] | None = None
    hflip: bool = False
    jitter: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.scale
        if not 0 < low <= high:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {self.scale}")
        if self.crop is not None and min(self.crop) < 1:
            raise ValueError(f"crop must be (H, W) of positive sizes, got {self.crop}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must lie in [0, 1), got {self.jitter}")

    @property
    def active(self) -> bool:
        return self.scale != (1.0, 1.0) or self.crop is not None or self.hflip or self.jitter > 0

    def __call__(self, image: Tensor, mask: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """(C, H, W) float image in [0, 1] and (H, W) int64 mask -> the transformed pair."""
        factor = rng.uniform(*self.scale)
        if factor != 1.0:
            image, mask = rescale(image, mask, factor)
        if self.jitter:
            image = photometric_jitter(image, *rng.uniform(1 - self.jitter, 1 + self.jitter, size=3))
        if self.crop is not None:
            image, mask = pad_to(image, mask, self.crop)
            top = int(rng.integers(0, image.shape[-2] - self.crop[0] + 1))
            left = int(rng.integers(0, image.shape[-1] - self.crop[1] + 1))
            image = image[:, top : top + self.crop[0], left : left + self.crop[1]]
            mask = mask[top : top + self.crop[0], left : left + self.crop[1]]
        if self.hflip and rng.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        return image.contiguous(), mask.contiguous()


def rescale(image: Tensor, mask: Tensor, factor: float) -> tuple[Tensor, Tensor]:
    """Both sides times ``factor``: image bilinear (antialiased), mask nearest at the same pixel centres."""
    height, width = image.shape[-2:]
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    # "nearest-exact" samples at pixel centres, the same geometry as bilinear with align_corners=False
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
    return image.clamp(0, 1), mask


def photometric_jitter(image: Tensor, brightness: float, contrast: float, saturation: float) -> Tensor:
    """Brightness, contrast, saturation factors applied in that order to a (C, H, W) image in [0, 1]."""
    image = (image * brightness).clamp(0, 1)
    grey = _grey(image)  # (1, H, W)
    image = ((image - grey.mean()) * contrast + grey.mean()).clamp(0, 1)
    if image.shape[0] == 3:
        grey = _grey(image)
        image = (grey + (image - grey) * saturation).clamp(0, 1)
    return image


def _grey(image: Tensor) -> Tensor:
    if image.shape[0] == 1:
        return image
    weights = image.new_tensor(_GREY).view(3, 1, 1)
    return (image * weights).sum(dim=0, keepdim=True)


def pad_to(image: Tensor, mask: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Pad bottom and right to at least ``size`` (H, W): image with 0, mask with the ignore label."""
    extra_h, extra_w = max(0, size[0] - image.shape[-2]), max(0, size[1] - image.shape[-1])
    if extra_h or extra_w:
        image = F.pad(image, (0, extra_w, 0, extra_h), value=0.0)
        mask = F.pad(mask, (0, extra_w, 0, extra_h), value=IGNORE_INDEX)
    return image, mask


class AugmentedSegmentation(InfoDataset):
    """A segmentation dataset whose items pass through ``augment``, seeded by (seed, epoch, index)."""

    def __init__(
        self, dataset: FileSegmentationDataset | ArraySegmentationDataset, augment: SegAugment, *, seed: int = 0
    ) -> None:
        self.dataset, self.augment, self.seed = dataset, augment, seed
        self.info = dataset.info
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw other augmentations in each epoch (the trainer calls this before every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def mask(self, index: int) -> np.ndarray:
        """The un-augmented mask of item ``index`` (for class statistics)."""
        return self.dataset.mask(index)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.dataset[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.augment(image, mask, rng)


def maybe_augment(
    dataset: FileSegmentationDataset | ArraySegmentationDataset,
    *,
    split: str,
    scale: tuple[float, float],
    crop: tuple[int, int] | None,
    hflip: bool,
    jitter: float,
    seed: int,
) -> InfoDataset:
    """The training split wrapped in :class:`SegAugment` when any augmentation is asked for; others unchanged."""
    try:
        augment = SegAugment(  # tuples also from YAML lists; a wrong length is SegAugment's ValueError
            scale=cast(tuple[float, float], tuple(scale)),
            crop=None if crop is None else cast(tuple[int, int], tuple(crop)),
            hflip=hflip,
            jitter=jitter,
        )
    except ValueError as exc:
        raise UserError(f"{dataset.info.name}: {exc}") from None
    if split != "train" or not augment.active:
        return dataset
    return AugmentedSegmentation(dataset, augment, seed=seed)
