"""A user's own segmentation data: ``images/`` and ``masks/`` with matching file names.

Layouts:

- ``path/images/*`` + ``path/masks/*`` — one pool, split with a fixed seed into ``val_fraction``,
  ``test_fraction`` and the rest for ``train``;
- ``path/{train,val,test}/images`` + ``.../masks`` — the splits as given.

An image and its mask share a file stem (``a.jpg`` pairs with ``a.png``). Masks are
single-channel PNGs of class indices; 255 is ignored. The class count is ``num_classes``, the
length of ``class_names``, or one more than the largest label found in the masks (refused when
most labels below it never occur: a stray value such as 200 is not taken for 201 classes). A mask whose size differs from its image's
is an error naming the file. ``img_size`` (H, W) resizes both (nearest for masks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnvision.data.base import SPLITS, split_fractions
from rnnvision.data.registry import register_dataset
from rnnvision.data.segmentation import IGNORE_INDEX, FileSegmentationDataset, read_mask, segmentation_info
from rnnvision.data.transforms import IMAGE_SUFFIXES, image_size
from rnnvision.errors import UserError


def _pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of ``folder/images`` and ``folder/masks``, matched by stem; checks sizes."""
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise UserError(f"{folder} needs images/ and masks/ folders with matching file names")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    pairs = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if image.stem not in masks:
            raise UserError(f"image {image} has no mask in {masks_dir} (expected {image.stem}.png)")
        pairs.append((image, masks[image.stem]))
    for image, mask in pairs:
        a, b = image_size(image), image_size(mask)
        if a != b:
            raise UserError(f"mask {mask} is {b[0]}x{b[1]} but its image {image} is {a[0]}x{a[1]}; they must match")
    return pairs


def _labels(pairs: list[tuple[Path, Path]]) -> set[int]:
    """Every class label used by the masks (IGNORE_INDEX left out)."""
    found: set[int] = set()
    for _, mask in pairs:
        found.update(int(v) for v in np.unique(read_mask(mask)))
    found.discard(IGNORE_INDEX)
    return found or {0}


@register_dataset("mask-folder", task="segment")
def mask_folder(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    path: str = "",
    num_classes: int = 0,
    class_names: tuple[str, ...] = (),
    in_chans: int = 3,
    img_size: tuple[int, int] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> FileSegmentationDataset:
    """Your images/ and masks/ (class-index PNGs, 255 ignored); classes given or inferred."""
    folder = Path(path).expanduser()
    if not path or not folder.is_dir():
        raise UserError(
            f"mask-folder needs data.path set to a folder holding images/ and masks/; {folder} is not a folder"
        )
    if (folder / "train").is_dir():
        per_split = {s: _pairs(folder / s) for s in SPLITS if (folder / s).is_dir()}
        if split not in per_split:
            raise UserError(f"{folder} has no {split}/ folder; it has {', '.join(per_split)}")
        everything, pairs = [p for ps in per_split.values() for p in ps], per_split[split]
    else:
        everything = _pairs(folder)
        pairs = split_fractions(everything, val_fraction=val_fraction, test_fraction=test_fraction)[split]
    if not pairs:
        raise UserError(f"no image/mask pairs for split {split!r} under {folder}")
    labels = _labels(everything)
    largest = max(labels)
    count = num_classes or len(class_names) or largest + 1
    if largest >= count:
        raise UserError(
            f"masks under {folder} hold label {largest}, but there are {count} classes (0 to {count - 1}, 255 ignored); "
            "fix the masks or raise num_classes"
        )
    unused = sorted(set(range(largest + 1)) - labels)
    if not num_classes and not class_names and len(unused) > largest // 2:
        raise UserError(
            f"masks under {folder} use labels {', '.join(map(str, sorted(labels)[:8]))}"
            f"{' ...' if len(labels) > 8 else ''}: label {largest} would make {largest + 1} classes, "
            f"{len(unused)} of them never seen; set data.num_classes (or class_names), or fix the masks"
        )
    if class_names and len(class_names) != count:
        raise UserError(f"class_names lists {len(class_names)} names for {count} classes")
    names = class_names or tuple(f"class {k}" for k in range(count))
    return FileSegmentationDataset(pairs, segmentation_info("mask-folder", names, in_chans=in_chans, img_size=img_size))
