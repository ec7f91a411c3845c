"""Weizmann Horse (Borenstein & Ullman, 2002): 328 side views of horses with figure-ground masks.

Files: ``<root>/weizmann-horse/weizmann_horse_db/{rgb,figure_ground}/horseNNN.jpg`` (the folder
``weizmann_horse_db`` may also be left out). ``figure_ground/`` holds the masks as greyscale
JPEGs: a pixel is horse (class 1) where the mask is at least 128, background (class 0) elsewhere.
The colour images of ``rgb/`` are often larger than their masks; each is resized (bilinear) to
its mask's size, the size at which the masks were drawn (and the greyscale ``gray/`` images are).

Split (there is no official one): the horse files present in both folders, sorted by name, are
permuted with ``numpy.random.RandomState(0)``; the first ``test_images`` (100) are test, the next
``val_images`` (28) val and the rest train (200 of 328). Images differ in size, so training
needs ``img_size`` (resize) or ``crop``; training images can be augmented like CamVid's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rnnvision.data.base import InfoDataset, split_indices
from rnnvision.data.registry import register_dataset
from rnnvision.data.root import data_root
from rnnvision.data.seg_transforms import maybe_augment
from rnnvision.data.segmentation import FileSegmentationDataset, segmentation_info
from rnnvision.data.transforms import open_image
from rnnvision.errors import UserError

CLASS_NAMES = ("background", "horse")
FIGURE = 128  # a mask pixel at least this bright is horse
SPLIT_SEED = 0


def horse_folder(root: str | Path | None) -> Path:
    """The folder holding ``rgb/`` and ``figure_ground/``; a missing one raises UserError."""
    base = data_root(root) / "weizmann-horse"
    for folder in (base / "weizmann_horse_db", base):
        if (folder / "rgb").is_dir() and (folder / "figure_ground").is_dir():
            return folder
    raise UserError(
        f"weizmann-horse: no rgb/ and figure_ground/ folders under {base} (or {base / 'weizmann_horse_db'}); "
        "point --data-dir at the folder holding weizmann-horse/"
    )


def read_horse(image_path: Path, mask_path: Path) -> tuple[Image.Image, np.ndarray]:
    """The colour image resized to its mask's size, and the mask thresholded at 128 (1 = horse)."""
    figure = np.asarray(open_image(mask_path).convert("L"))
    image = open_image(image_path).convert("RGB")
    if image.size != (figure.shape[1], figure.shape[0]):
        image = image.resize((figure.shape[1], figure.shape[0]), Image.Resampling.BILINEAR)
    return image, (figure >= FIGURE).astype(np.uint8)


@register_dataset("weizmann-horse", task="segment")
def weizmann_horse(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    img_size: tuple[int, int] | None = None,
    val_images: int = 28,
    test_images: int = 100,
    scale: tuple[float, float] = (1.0, 1.0),
    crop: tuple[int, int] | None = None,
    hflip: bool = False,
    jitter: float = 0.0,
    augment_seed: int = 0,
    cache: bool = True,
) -> InfoDataset:
    """Weizmann horses, horse vs background per pixel; seeded 200/28/100 split."""
    folder = horse_folder(root)
    masks = {p.stem: p for p in (folder / "figure_ground").glob("*.jpg")}
    images = sorted(p for p in (folder / "rgb").glob("*.jpg") if p.stem in masks)
    if len(images) <= val_images + test_images:
        raise UserError(
            f"weizmann-horse: {len(images)} image/mask pairs in {folder}, too few for {val_images} val and "
            f"{test_images} test images"
        )
    index = split_indices(len(images), val_size=val_images, test_size=test_images, seed=SPLIT_SEED)[split]
    pairs = [(images[i], masks[images[i].stem]) for i in index]
    info = segmentation_info("weizmann-horse", CLASS_NAMES, in_chans=3, img_size=img_size)
    dataset = FileSegmentationDataset(pairs, info, read_pair=read_horse, cache=cache)
    return maybe_augment(dataset, split=split, scale=scale, crop=crop, hflip=hflip, jitter=jitter, seed=augment_seed)
