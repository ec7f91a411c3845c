"""Segmentation readers: digit-scenes (embedded), CamVid (real test split, any splits present), mask-folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision.data import build_dataset
from rnnvision.data.digit_scenes import INK
from rnnvision.data.segmentation import IGNORE_INDEX
from rnnvision.errors import UserError
from tests.conftest import shared_dataset

SMALL = {"train_images": 20, "val_images": 6, "test_images": 8}


def test_digit_scenes_are_seeded_labelled_by_ink_and_split_apart():
    test = build_dataset("digit-scenes", split="test", **SMALL)
    again = build_dataset("digit-scenes", split="test", **SMALL)
    other_seed = build_dataset("digit-scenes", split="test", seed=1, **SMALL)
    train = build_dataset("digit-scenes", split="train", **SMALL)
    assert len(test) == 8 and len(train) == 20 and len(build_dataset("digit-scenes", split="val", **SMALL)) == 6
    assert torch.equal(test.images, again.images) and torch.equal(test.masks, again.masks)
    assert not torch.equal(test.images, other_seed.images)
    image, mask = test[0]
    assert image.shape == (1, 48, 48) and mask.shape == (48, 48) and mask.dtype == torch.int64
    assert test.info.task == "segment" and test.info.class_names[0] == "background" and len(test.info.class_names) == 11
    # a pixel is labelled exactly where a digit's ink is bright enough; labels are digit + 1
    assert torch.equal(test.masks > 0, test.images[:, 0] >= INK)
    assert int(test.masks.max()) <= 10 and len(test.masks.unique()) > 3


def test_digit_scenes_digits_never_overlap():
    scenes = build_dataset(
        "digit-scenes", split="train", canvas_size=32, digit_size=16, min_digits=4, max_digits=4, **SMALL
    )
    # four 16px digits on a 32px canvas fit only as the four quadrants
    for mask in scenes.masks:
        labels = [set(mask[y : y + 16, x : x + 16].unique().tolist()) - {0} for y in (0, 16) for x in (0, 16)]
        assert all(len(q) <= 1 for q in labels)


def test_digit_scenes_bad_options_are_user_errors():
    with pytest.raises(UserError, match="source must be one of digits, mnist"):
        build_dataset("digit-scenes", split="test", source="emnist")
    with pytest.raises(UserError, match="may not fit"):
        build_dataset("digit-scenes", split="test", canvas_size=32, max_digits=5)


def test_digit_scenes_can_draw_mnist_digits():
    root = shared_dataset("mnist").parent
    scenes = build_dataset("digit-scenes", split="test", source="mnist", root=root, test_images=4)
    assert scenes.images.shape == (4, 1, 48, 48) and int(scenes.masks.max()) >= 1


def test_camvid_reads_the_real_splits_and_holds_out_val_from_train():
    root = shared_dataset("camvid").parent
    test = build_dataset("camvid", split="test", root=root)
    assert len(test) == 233 and test.info.class_names[0] == "Sky" and len(test.info.class_names) == 11
    image, mask = test[0]
    assert image.shape == (3, 360, 480) and mask.shape == (360, 480)
    values = set(mask.unique().tolist())
    assert values <= set(range(11)) | {IGNORE_INDEX} and IGNORE_INDEX in values  # void 11 became the ignore label
    small = build_dataset("camvid", split="test", root=root, img_size=(90, 120))
    assert small[0][0].shape == (3, 90, 120) and small[0][1].shape == (90, 120)
    if not (root / "camvid" / "train").is_dir():
        pytest.skip("the real CamVid train split is absent")
    train, val = (build_dataset("camvid", split=s, root=root) for s in ("train", "val"))
    assert len(train) == 330 and len(val) == 37  # SegNet's 367 training images, 37 held out
    train_names, val_names = {p.name for p, _ in train.pairs}, {p.name for p, _ in val.pairs}
    assert not train_names & val_names and len(train_names | val_names) == 367
    assert sorted(val_names)[:2] == sorted(p.name for p, _ in build_dataset("camvid", split="val", root=root).pairs)[:2]


def _png(path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).convert(mode or ("L" if array.ndim == 2 else "RGB")).save(path)


def test_camvid_reads_whichever_splits_exist(tmp_path):
    _png(tmp_path / "camvid" / "test" / "a.png", np.full((6, 8, 3), 90))
    _png(tmp_path / "camvid" / "testannot" / "a.png", np.array([[0, 11, 3, 10] * 2] * 6))
    test = build_dataset("camvid", split="test", root=tmp_path)
    assert test[0][1][0, :4].tolist() == [0, IGNORE_INDEX, 3, 10]
    for split in ("train", "val"):  # no train split: nothing to hold val out of either
        with pytest.raises(UserError, match=r"present: test; missing: train, val"):
            build_dataset("camvid", split=split, root=tmp_path)


def test_camvid_holds_out_a_seeded_val_split_when_val_is_absent(tmp_path):
    for split, count in (("train", 10), ("test", 2)):
        for index in range(count):
            _png(tmp_path / "camvid" / split / f"{index:02d}.png", np.full((6, 8, 3), 20 * index))
            _png(tmp_path / "camvid" / f"{split}annot" / f"{index:02d}.png", np.full((6, 8), index % 12))
    train, val = (build_dataset("camvid", split=s, root=tmp_path, val_images=3) for s in ("train", "val"))
    order = np.random.RandomState(0).permutation(10)
    assert [p.name for p, _ in val.pairs] == [f"{i:02d}.png" for i in sorted(order[:3])]
    assert [p.name for p, _ in train.pairs] == [f"{i:02d}.png" for i in sorted(order[3:])]
    with pytest.raises(UserError, match="val_images must lie between 1 and 9"):
        build_dataset("camvid", split="val", root=tmp_path, val_images=10)
    augmented = build_dataset("camvid", split="train", root=tmp_path, val_images=3, crop=(4, 4), hflip=True)
    assert augmented[0][0].shape == (3, 4, 4) and hasattr(augmented, "set_epoch")
    assert build_dataset("camvid", split="test", root=tmp_path, crop=(4, 4))[0][0].shape == (3, 6, 8)  # test: never


def test_decoded_pairs_are_cached_so_files_are_read_once(tmp_path):
    _png(tmp_path / "camvid" / "test" / "a.png", np.full((6, 8, 3), 90))
    _png(tmp_path / "camvid" / "testannot" / "a.png", np.array([[0, 11, 3, 10] * 2] * 6))
    for cache, reads_expected in ((True, 1), (False, 3)):
        data = build_dataset("camvid", split="test", root=tmp_path, cache=cache)
        reads = []
        reader = data.read_pair
        data.read_pair = lambda *paths: reads.append(paths) or reader(*paths)
        items = [data[0] for _ in range(3)]
        assert len(reads) == reads_expected
        assert all(torch.equal(items[0][0], i[0]) and torch.equal(items[0][1], i[1]) for i in items)
        assert items[0][1][0, :4].tolist() == [0, IGNORE_INDEX, 3, 10] and data.mask(0)[0, 1] == IGNORE_INDEX


def _horse_folder(root, count: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        figure = np.zeros((12, 16), dtype=np.uint8)
        figure[3:9, 4 + index % 4 : 12] = 200 + rng.integers(0, 40)  # the horse; JPEG blurs its edges
        figure[0, 0] = 127  # just below the threshold: background
        _png(root / "weizmann-horse" / "weizmann_horse_db" / "figure_ground" / f"horse{index:03d}.jpg", figure)
        _png(
            root / "weizmann-horse" / "weizmann_horse_db" / "rgb" / f"horse{index:03d}.jpg",
            np.full((24, 32, 3), 10 * index),
        )


def test_weizmann_horse_thresholds_masks_resizes_images_and_splits_with_a_seed(tmp_path):
    _horse_folder(tmp_path, 9)
    options = {"root": tmp_path, "val_images": 2, "test_images": 3}
    splits = {s: build_dataset("weizmann-horse", split=s, **options) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [4, 2, 3]
    names = [{p.name for p, _ in splits[s].pairs} for s in ("train", "val", "test")]
    assert set.union(*names) == {f"horse{i:03d}.jpg" for i in range(9)} and sum(map(len, names)) == 9
    order = np.random.RandomState(0).permutation(9)
    assert names[2] == {f"horse{i:03d}.jpg" for i in order[:3]}
    image, mask = splits["train"][0]
    assert image.shape == (3, 12, 16) and mask.shape == (12, 16)  # the colour image takes its mask's size
    assert set(mask.unique().tolist()) == {0, 1} and mask[0, 0] == 0 and bool((mask[4:8, 8:12] == 1).all())
    assert splits["train"].info.class_names == ("background", "horse")
    with pytest.raises(UserError, match="too few for 5 val and 5 test"):
        build_dataset("weizmann-horse", split="train", root=tmp_path, val_images=5, test_images=5)
    with pytest.raises(UserError, match="no rgb/ and figure_ground/"):
        build_dataset("weizmann-horse", split="train", root=tmp_path / "nothing")


def test_weizmann_horse_real_data():
    root = shared_dataset("weizmann-horse").parent
    splits = {s: build_dataset("weizmann-horse", split=s, root=root) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [200, 28, 100]
    image, mask = splits["test"][0]
    assert image.shape[-2:] == mask.shape and set(mask.unique().tolist()) == {0, 1}
    assert 0.05 < float(mask.float().mean()) < 0.7  # a horse, not an empty or full mask
    small = build_dataset("weizmann-horse", split="val", root=root, img_size=(48, 64))
    assert small[0][0].shape == (3, 48, 64) and small[0][1].shape == (48, 64)


def _mask_folder(root, sizes=((6, 8), (6, 8), (6, 8), (6, 8))):
    for index, (h, w) in enumerate(sizes):
        _png(root / "images" / f"im{index}.jpg", np.full((h, w, 3), 40 * index))
        _png(root / "masks" / f"im{index}.png", np.full((6, 8), index % 3))
    return root


def test_mask_folder_infers_classes_and_splits_with_a_seed(tmp_path):
    folder = _mask_folder(tmp_path / "set")
    options = {"path": str(folder), "val_fraction": 0.25, "test_fraction": 0.25}
    splits = {s: build_dataset("mask-folder", split=s, **options) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    assert splits["train"].info.class_names == ("class 0", "class 1", "class 2")
    named = build_dataset("mask-folder", split="train", num_classes=4, class_names=("a", "b", "c", "d"), **options)
    assert named.info.class_names == ("a", "b", "c", "d")
    image, mask = named[0]
    assert image.shape == (3, 6, 8) and mask.shape == (6, 8)
    resized = build_dataset("mask-folder", split="train", img_size=(3, 4), **options)
    assert resized[0][0].shape == (3, 3, 4) and resized[0][1].shape == (3, 4)
    with pytest.raises(UserError, match="hold label 2, but there are 2 classes"):
        build_dataset("mask-folder", split="train", num_classes=2, **options)


def test_mask_folder_errors_name_the_file(tmp_path):
    folder = _mask_folder(tmp_path / "bad", sizes=((6, 8), (5, 8)))
    with pytest.raises(UserError) as info:
        build_dataset("mask-folder", split="train", path=str(folder))
    assert "im1.png" in str(info.value) and "8x6" in str(info.value) and "8x5" in str(info.value)
    folder = _mask_folder(tmp_path / "rgb", sizes=((6, 8),))
    _png(folder / "masks" / "im0.png", np.zeros((6, 8, 3)))
    with pytest.raises(UserError, match="im0.png is a RGB image; masks must be single-channel"):
        build_dataset("mask-folder", split="train", path=str(folder), test_fraction=0, val_fraction=0)
    (folder / "masks" / "im0.png").unlink()
    with pytest.raises(UserError, match="im0.jpg has no mask"):
        build_dataset("mask-folder", split="train", path=str(folder))
    with pytest.raises(UserError, match="needs data.path"):
        build_dataset("mask-folder", split="train")


def test_mask_folder_reads_given_splits(tmp_path):
    _mask_folder(tmp_path / "given" / "train", sizes=((6, 8), (6, 8), (6, 8)))
    _mask_folder(tmp_path / "given" / "test", sizes=((6, 8),))
    options = {"path": str(tmp_path / "given")}
    assert len(build_dataset("mask-folder", split="train", **options)) == 3
    assert len(build_dataset("mask-folder", split="test", **options)) == 1
    with pytest.raises(UserError, match="has no val/ folder; it has train, test"):
        build_dataset("mask-folder", split="val", **options)
