"""A user's own text images: image files plus ``labels.tsv`` (file name TAB text, one per line).

Two layouts are understood:

- ``path/train/labels.tsv``, ``path/test/labels.tsv`` (and optionally ``path/val/labels.tsv``;
  without it ``val_fraction`` of train is held out with a fixed seed);
- ``path/labels.tsv`` — one pool, split with a fixed seed into ``val_fraction``,
  ``test_fraction`` and the rest for ``train``.

File names in a ``labels.tsv`` are relative to the folder that holds it. The charset is, in
order of preference: the ``charset`` option (the characters themselves, in class order), the
contents of ``charset_file`` (UTF-8, line breaks ignored), or every character that occurs in any
label of any split (sorted by code point). A label with a character outside the charset is an
error that lists the characters.
"""

from __future__ import annotations

from pathlib import Path

from rnnvision.data.base import read_utf8, split_fractions
from rnnvision.data.registry import register_dataset
from rnnvision.data.text import WordFileDataset, check_texts, text_info
from rnnvision.errors import UserError


def read_labels_tsv(path: Path, *, root: Path | None = None) -> list[tuple[Path, str]]:
    """(image path, text) per line of a labels.tsv; paths relative to its folder, and inside ``root``
    (default: that folder): an absolute path or a ``..`` that leaves the dataset is refused."""
    samples = []
    inside = (root or path.parent).resolve()
    for number, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise UserError(f"{path}:{number}: expected 'file<TAB>text', found no tab")
        name, text = line.split("\t", 1)
        image = path.parent / name
        if "\0" in name or not image.resolve().is_relative_to(inside):
            raise UserError(f"{path}:{number}: {name!r} lies outside the dataset folder {inside}; list files inside it")
        if not image.is_file():
            raise UserError(f"{path}:{number}: image {image} not found")
        samples.append((image, text))
    if not samples:
        raise UserError(f"{path} lists no images")
    return samples


def _splits(folder: Path, val_fraction: float, test_fraction: float) -> dict[str, list[tuple[Path, str]]]:
    if (folder / "train" / "labels.tsv").is_file():
        if not (folder / "test" / "labels.tsv").is_file():
            raise UserError(f"{folder} has train/labels.tsv but no test/labels.tsv")
        splits = {s: read_labels_tsv(folder / s / "labels.tsv", root=folder) for s in ("train", "test")}
        if (folder / "val" / "labels.tsv").is_file():
            splits["val"] = read_labels_tsv(folder / "val" / "labels.tsv", root=folder)
        else:
            held = split_fractions(splits["train"], val_fraction=val_fraction)
            splits["train"], splits["val"] = held["train"], held["val"]
        return splits
    if (folder / "labels.tsv").is_file():
        pool = read_labels_tsv(folder / "labels.tsv")
        return split_fractions(pool, val_fraction=val_fraction, test_fraction=test_fraction)
    raise UserError(f"{folder} holds neither labels.tsv nor train/labels.tsv and test/labels.tsv")


@register_dataset("text-folder", task="recognize")
def text_folder(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    path: str = "",
    charset: str = "",
    charset_file: str = "",
    height: int = 32,
    max_width: int = 512,
    in_chans: int = 1,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    augment: bool = False,
) -> WordFileDataset:
    """Text-line images listed in labels.tsv under ``path`` (``root`` and ``download`` are unused)."""
    folder = Path(path).expanduser()
    if not path or not folder.is_dir():
        raise UserError(f"text-folder needs data.path set to a folder holding labels.tsv; {folder} is not a folder")
    splits = _splits(folder, val_fraction, test_fraction)
    if charset_file and not charset:
        file = Path(charset_file).expanduser()
        if not file.is_file():
            raise UserError(f"charset file not found: {file}")
        charset = "".join(dict.fromkeys(read_utf8(file).replace("\r", "").replace("\n", "")))
    if not charset:
        charset = "".join(sorted({c for samples in splits.values() for _, text in samples for c in text}))
    samples = splits[split]
    if not samples:
        raise UserError(f"text-folder: split {split!r} of {folder} is empty; change val_fraction or test_fraction")
    check_texts((t for _, t in samples), charset, source=f"{folder} ({split})")
    info = text_info("text-folder", charset, in_chans=in_chans, height=height, max_width=max_width)
    return WordFileDataset(samples, info, augment=augment and split == "train")
