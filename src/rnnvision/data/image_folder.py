"""A user's own images for classification: one subfolder per class.

Two layouts are understood:

- ``path/train/<class>/*``, ``path/val/<class>/*``, ``path/test/<class>/*`` — the splits as given;
- ``path/<class>/*`` — one pool, split per class with a fixed seed into ``val_fraction``,
  ``test_fraction`` and the rest for ``train``.

Images of any size and mode are converted to ``in_chans`` channels and resized to ``img_size``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from rnnvision.data.base import SPLITS, DatasetInfo, InfoDataset, classification_info, split_fractions
from rnnvision.data.registry import register_dataset
from rnnvision.data.transforms import IMAGE_SUFFIXES, load_image, random_shift
from rnnvision.errors import UserError


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    return {c.name: sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for c in classes}


class ImageFolderDataset(InfoDataset):
    """(image, label) pairs read lazily from files; image float32 (C, H, W) in [0, 1]."""

    def __init__(self, samples: list[tuple[Path, int]], info: DatasetInfo, *, max_shift: int = 0) -> None:
        self.samples, self.info, self.max_shift = samples, info, max_shift

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        image = load_image(path, channels=self.info.in_chans, size=self.info.img_size)
        return (random_shift(image, self.max_shift) if self.max_shift else image), label


@register_dataset("image-folder", task="classify")
def image_folder(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    path: str = "",
    in_chans: int = 1,
    img_size: int | tuple[int, int] = 28,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_shift: int = 0,
) -> ImageFolderDataset:
    """Class-per-subfolder images under ``path`` (``root`` and ``download`` are unused)."""
    folder = Path(path).expanduser()
    if not path or not folder.is_dir():
        raise UserError(f"image-folder needs data.path set to a folder of class subfolders; {folder} is not a folder")
    size = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
    if all((folder / s).is_dir() for s in ("train", "test")):
        per_split = {s: _class_files(folder / s) for s in SPLITS if (folder / s).is_dir()}
        class_names = sorted(per_split["train"])
        if split not in per_split:
            raise UserError(f"{folder} has no {split}/ folder; it has {', '.join(per_split)}")
        files = per_split[split]
    else:
        pool = _class_files(folder)
        class_names = sorted(pool)
        files = {}
        for name, paths in pool.items():  # each class split alike
            files[name] = split_fractions(paths, val_fraction=val_fraction, test_fraction=test_fraction)[split]
    if not class_names:
        raise UserError(f"{folder} holds no class subfolders (expected {folder}/<class>/<image>)")
    unknown = sorted(set(files) - set(class_names))
    if unknown:
        raise UserError(f"{folder}/{split} has classes not in train/: {', '.join(unknown)}")
    samples = [(p, class_names.index(name)) for name, paths in files.items() for p in paths]
    if not samples:
        raise UserError(f"no images found for split {split!r} under {folder}")
    info = classification_info("image-folder", class_names, in_chans=in_chans, img_size=size)
    return ImageFolderDataset(samples, info, max_shift=max_shift if split == "train" else 0)
