"""Dataset readers: the embedded digits, the real MNIST files, a user's image folder."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision.data import build_dataset, list_datasets
from rnnvision.data.base import split_fractions
from rnnvision.data.digits import digit_split_indices
from rnnvision.data.idx import read_idx
from rnnvision.errors import UserError
from tests.conftest import shared_dataset


def test_digits_split_is_fixed_disjoint_and_complete():
    sets = {s: build_dataset("digits", split=s) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [1257, 180, 360]
    image, label = sets["test"][0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32 and image.min() >= 0 and image.max() <= 1
    assert 0 <= int(label) <= 9
    index = digit_split_indices()
    assert sorted(np.concatenate(list(index.values())).tolist()) == list(range(1797))  # a partition
    again = build_dataset("digits", split="test")
    assert torch.equal(again.images, sets["test"].images)


def test_folder_hold_out_is_seeded_test_then_val_then_train():
    # The split image-folder (per class), mask-folder and text-folder have always made: a permutation
    # seeded 0, its first round(n * test_fraction) for test, the next round(n * val_fraction) for val.
    parts = split_fractions(list("abcdefghij"), val_fraction=0.2, test_fraction=0.1)
    assert parts == {"test": ["c"], "val": ["e", "i"], "train": ["a", "b", "d", "f", "g", "h", "j"]}
    assert split_fractions(list("abcdefghij"), val_fraction=0.2)["val"] == ["c", "i"]  # no test: val comes first


def test_registered_datasets_include_the_foundation_sets():
    assert {"digits", "mnist", "fashion-mnist", "image-folder"} <= set(list_datasets())


def _write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trips_and_rejects_truncation(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "ok.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "ok.gz"), array)
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">3I", 2, 3, 4) + b"\0" * 5)
    with pytest.raises(UserError, match="header promises"):
        read_idx(tmp_path / "short.gz")


def test_missing_files_give_one_clear_message(tmp_path):
    with pytest.raises(UserError) as info:
        build_dataset("mnist", split="test", root=tmp_path)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and str(tmp_path / "mnist") in message and "--download" in message
    assert "\n" not in message


def test_data_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNVISION_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(UserError, match="elsewhere/fashion-mnist"):
        build_dataset("fashion-mnist", split="test")


@pytest.mark.parametrize("name,folder", [("mnist", "mnist"), ("fashion-mnist", "fashion-mnist")])
def test_real_idx_files_load_with_documented_splits(name, folder):
    root = shared_dataset(folder).parent
    test = build_dataset(name, split="test", root=root)
    train = build_dataset(name, split="train", root=root, val_size=5000)
    val = build_dataset(name, split="val", root=root, val_size=5000)
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    assert test.images.shape == (10000, 1, 28, 28)
    assert sorted(torch.bincount(test.labels).tolist())[0] > 800  # every class is present
    assert test.info.model_kwargs == {"num_classes": 10, "in_chans": 1, "img_size": (28, 28)}
    if name == "mnist":
        assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the first MNIST test labels
    else:
        assert test.info.class_names[9] == "Ankle boot"


def test_shift_augmentation_only_on_train_and_keeps_content():
    train = build_dataset("digits", split="train", max_shift=2)
    test = build_dataset("digits", split="test", max_shift=2)
    assert train.max_shift == 2 and test.max_shift == 0
    torch.manual_seed(0)
    shifted = [train[0][0] for _ in range(20)]
    assert any(not torch.equal(s, shifted[0]) for s in shifted)
    assert all(s.sum() <= train.images[0].float().sum() / 255 + 1e-4 for s in shifted)


def _make_folder(root, classes=("cat", "dog"), per_class=5, size=(13, 17), mode="RGB"):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (40 + 100 * k, 10 * i, 200) if mode == "RGB" else 40 + 100 * k
            Image.new(mode, size, colour).save(root / name / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")


def test_image_folder_converts_mode_and_size_and_splits_per_class(tmp_path):
    _make_folder(tmp_path / "pets", per_class=10, mode="RGB")
    kwargs = dict(path=str(tmp_path / "pets"), in_chans=1, img_size=(8, 6), val_fraction=0.2, test_fraction=0.1)
    sets = {s: build_dataset("image-folder", split=s, **kwargs) for s in ("train", "val", "test")}
    assert [len(sets[s]) for s in ("train", "val", "test")] == [14, 4, 2]
    image, label = sets["train"][0]
    assert image.shape == (1, 8, 6) and label in (0, 1)
    assert sets["train"].info.class_names == ("cat", "dog")
    files = [{p for p, _ in d.samples} for d in sets.values()]
    assert not (files[0] & files[1]) and not (files[0] & files[2])


def test_image_folder_with_split_subfolders_and_errors(tmp_path):
    _make_folder(tmp_path / "ds" / "train", mode="L")
    _make_folder(tmp_path / "ds" / "test", mode="L")
    test = build_dataset("image-folder", split="test", path=str(tmp_path / "ds"), in_chans=3, img_size=5)
    assert len(test) == 10 and test[0][0].shape == (3, 5, 5)
    with pytest.raises(UserError, match="no val/ folder"):
        build_dataset("image-folder", split="val", path=str(tmp_path / "ds"))
    with pytest.raises(UserError, match="needs data.path"):
        build_dataset("image-folder", split="train", path=str(tmp_path / "missing"))
