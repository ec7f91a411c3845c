"""IIIT5K-Words (Mishra, Alahari and Jawahar, BMVC 2012): 2,000 train and 3,000 test word crops.

Files (``<data root>/iiit5k``, the layout of the original release): ``train/*.png``,
``test/*.png`` and the labels in ``trainCharBound.mat`` / ``testCharBound.mat`` (MATLAB structs,
one record per image with fields ``ImgName`` such as ``test/1002_1.png`` and ``chars``, the
case-sensitive word). There is no official mirror to download from.

Splits: ``test`` is the official 3,000-image test set; ``val`` is a fixed seeded draw of
``val_size`` images from the official training set and ``train`` the rest of it. Words are
lower-cased unless ``case_sensitive`` (scene-text results on IIIT5K are case-insensitive).
"""

from __future__ import annotations

from pathlib import Path

from rnnvision.data.base import split_indices
from rnnvision.data.registry import register_dataset
from rnnvision.data.root import data_root
from rnnvision.data.text import ALNUM, LOWER_ALNUM, WordFileDataset, check_texts, text_info
from rnnvision.errors import UserError


def read_iiit5k_labels(folder: Path, part: str) -> list[tuple[Path, str]]:
    """(image path, word) for every record of ``{part}CharBound.mat`` (part: train or test)."""
    from scipy.io import loadmat

    mat_file = folder / f"{part}CharBound.mat"
    if not mat_file.is_file():
        raise UserError(
            f"iiit5k: {mat_file} not found; put the IIIT5K-Words release (train/, test/, trainCharBound.mat, "
            "testCharBound.mat) in a folder iiit5k/ under --data-dir (or RNNVISION_DATA)"
        )
    try:
        records = loadmat(mat_file)[f"{part}CharBound"][0]  # struct array (N,)
        samples = [(folder / str(r["ImgName"][0]), str(r["chars"][0])) for r in records]
    except Exception as exc:  # noqa: BLE001 - scipy's reader fails in many ways on a damaged or foreign file
        raise UserError(
            f"iiit5k: {mat_file} is not the release's {part}CharBound struct with ImgName and chars fields "
            f"({exc.__class__.__name__}); replace it with the original file"
        ) from None
    inside = folder.resolve()
    outside = [str(p) for p, _ in samples if not p.resolve().is_relative_to(inside)]
    if outside:
        raise UserError(f"iiit5k: {mat_file.name} lists {len(outside)} image(s) outside {folder}, e.g. {outside[0]}")
    missing = [str(p) for p, _ in samples if not p.is_file()]
    if missing:
        raise UserError(f"iiit5k: {len(missing)} image(s) listed in {mat_file.name} are missing, e.g. {missing[0]}")
    return samples


@register_dataset("iiit5k", task="recognize")
def iiit5k(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    case_sensitive: bool = False,
    val_size: int = 200,
    height: int = 32,
    max_width: int = 320,
    in_chans: int = 1,
    augment: bool = True,
) -> WordFileDataset:
    """IIIT5K-Words scene-text crops; lower-cased 0-9a-z labels unless ``case_sensitive``."""
    folder = data_root(root) / "iiit5k"
    if download:
        raise UserError("iiit5k cannot be downloaded automatically; see ../shared/data/SOURCES.md for the release")
    charset = ALNUM if case_sensitive else LOWER_ALNUM
    if split == "test":
        samples = read_iiit5k_labels(folder, "test")
    else:
        samples = read_iiit5k_labels(folder, "train")
        if not 0 <= val_size < len(samples):
            raise UserError(f"iiit5k: val_size must lie in [0, {len(samples)}), got {val_size}")
        index = split_indices(len(samples), val_size=val_size, seed=0)[split]
        samples = [samples[i] for i in index]
    if not case_sensitive:
        samples = [(path, text.lower()) for path, text in samples]
    check_texts((t for _, t in samples), charset, source=f"iiit5k {split}")
    info = text_info("iiit5k", charset, in_chans=in_chans, height=height, max_width=max_width)
    return WordFileDataset(samples, info, augment=augment and split == "train")
