"""Recognition datasets: digit strings, IIIT5K, synthetic words, a user's text folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rnnvision.data import build_dataset
from rnnvision.data.synth_words import available_fonts, default_vocabulary
from rnnvision.data.text import ALNUM, LOWER_ALNUM, MIN_WIDTH
from rnnvision.errors import UserError
from tests.conftest import shared_dataset


def test_digit_strings_are_seeded_and_vary_in_length_and_width():
    test = build_dataset("digit-strings", split="test", source="sklearn", test_size=40, max_length=5)
    again = build_dataset("digit-strings", split="test", source="sklearn", test_size=40, max_length=5)
    other_seed = build_dataset("digit-strings", split="test", source="sklearn", test_size=40, max_length=5, seed=1)
    items = [test[i] for i in range(40)]
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(items, (again[i] for i in range(40))))
    assert [t for _, t in items] != [other_seed[i][1] for i in range(40)]
    assert {len(t) for _, t in items} == {1, 2, 3, 4, 5} and all(t.isdigit() for _, t in items)
    widths = {img.shape[-1] for img, _ in items}
    assert len(widths) > 10 and min(widths) >= MIN_WIDTH and max(widths) <= test.info.img_size[1]
    assert all(img.shape[:2] == (1, 32) and img.min() >= 0 and img.max() <= 1 for img, _ in items)
    assert test.info.charset == "0123456789" and test.info.model_kwargs == {
        "num_classes": 11,
        "in_chans": 1,
        "img_height": 32,
    }
    with pytest.raises(IndexError):
        test[40]


def test_digit_string_train_lines_are_fresh_per_seed_and_reproducible():
    train = build_dataset("digit-strings", split="train", source="sklearn", train_size=8)
    torch.manual_seed(5)
    first = [train[i][1] for i in range(8)]
    torch.manual_seed(5)
    assert [train[i][1] for i in range(8)] == first
    torch.manual_seed(6)
    assert [train[i][1] for i in range(8)] != first


def test_digit_strings_come_from_disjoint_digit_images():
    from rnnvision.data.digit_strings import _digit_source

    parts = {s: _digit_source("sklearn", s, None, False)[0] for s in ("train", "val", "test")}
    rows = {s: {a.tobytes() for a in images} for s, images in parts.items()}
    assert len(parts["train"]) == 1257 and len(parts["test"]) == 360
    assert not (rows["train"] & rows["test"]) and not (rows["val"] & rows["test"])


def test_digit_strings_from_mnist(shared_data_root):
    shared_dataset("mnist")
    test = build_dataset("digit-strings", split="test", root=shared_data_root, source="mnist", test_size=5)
    image, text = test[0]
    assert image.shape[1] == 32 and 1 <= len(text) <= 8
    assert len(test.glyphs) == 10000
    train = build_dataset("digit-strings", split="train", root=shared_data_root, source="auto", train_size=5)
    assert len(train.glyphs) == 55000


def test_distortion_rotates_and_shears_without_cutting_ink():
    from rnnvision.data.digit_strings import distort_glyph

    bar = np.zeros((20, 4), dtype=np.uint8)
    bar[:, 1:3] = 255  # a vertical stroke 20 high, 2 wide
    rng = np.random.default_rng(0)
    assert np.array_equal(distort_glyph(bar, rng, rotate=0.0, shear=0.0), bar[:, 1:3])  # identity: only the ink crop
    for _ in range(20):
        out = distort_glyph(bar, rng, rotate=30.0, shear=0.0)
        tilt = np.rad2deg(np.arctan2(out.shape[1] - 2, out.shape[0]))  # a rotated bar spans more columns
        assert 0 <= tilt <= 32 and out.sum() > 0.8 * bar.sum()  # within the angle, the ink kept
    slanted = distort_glyph(bar, np.random.default_rng(1), rotate=0.0, shear=1.0)
    assert slanted.shape[0] >= 19 and slanted.shape[1] > 4  # a shear along x widens, keeps the height


def test_digit_string_distortion_applies_to_training_lines_only():
    options = dict(source="sklearn", train_size=6, test_size=6, rotate=20.0, shear=0.3)
    plain = build_dataset("digit-strings", split="test", source="sklearn", test_size=6)
    distorted = build_dataset("digit-strings", split="test", **options)
    assert all(torch.equal(plain[i][0], distorted[i][0]) for i in range(6))
    train, train_plain = (
        build_dataset("digit-strings", split="train", **o) for o in (options, {"source": "sklearn", "train_size": 6})
    )
    torch.manual_seed(0)
    a = [train[i] for i in range(6)]
    torch.manual_seed(0)
    b = [train_plain[i] for i in range(6)]
    assert any(x[0].shape != y[0].shape or not torch.equal(x[0], y[0]) for x, y in zip(a, b))


def test_digit_strings_reject_bad_options():
    with pytest.raises(UserError, match="min_length"):
        build_dataset("digit-strings", split="test", source="sklearn", min_length=4, max_length=2)
    with pytest.raises(UserError, match="min_gap"):
        build_dataset("digit-strings", split="test", source="sklearn", min_gap=-5)
    with pytest.raises(UserError, match="rotate"):
        build_dataset("digit-strings", split="test", source="sklearn", rotate=90)


def test_iiit5k_reads_the_official_split(shared_data_root):
    shared_dataset("iiit5k")
    test = build_dataset("iiit5k", split="test", root=shared_data_root)
    train = build_dataset("iiit5k", split="train", root=shared_data_root)
    val = build_dataset("iiit5k", split="val", root=shared_data_root)
    assert (len(test), len(train), len(val)) == (3000, 1800, 200)
    assert not {p for p, _ in train.samples} & {p for p, _ in val.samples}
    image, text = test[0]
    assert text == "private" and image.shape[:2] == (1, 32) and image.shape[-1] >= MIN_WIDTH
    assert test.info.charset == LOWER_ALNUM and test.info.model_kwargs["num_classes"] == 37
    cased = build_dataset("iiit5k", split="test", root=shared_data_root, case_sensitive=True)
    assert cased[0][1] == "PRIVATE" and cased.info.charset == ALNUM


def test_iiit5k_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(UserError, match="testCharBound.mat not found"):
        build_dataset("iiit5k", split="test", root=tmp_path)


def test_synth_words_are_deterministic_and_use_the_fonts_that_cover_the_charset():
    fonts = available_fonts(ALNUM)
    assert len(fonts) >= 10 and not any(p.name.startswith(("cmex", "cmsy", "STIXSiz", "LastResort")) for p in fonts)
    vocabulary = default_vocabulary()
    assert len(vocabulary) > 2000 and "module" in vocabulary
    a = build_dataset("synth-words", split="val", val_size=6)
    b = build_dataset("synth-words", split="val", val_size=6)
    c = build_dataset("synth-words", split="val", val_size=6, seed=3)
    for i in range(6):
        assert torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1]
        assert set(a[i][1]) <= set(LOWER_ALNUM) and a[i][0].shape[1] == 32
    assert [a[i][1] for i in range(6)] != [c[i][1] for i in range(6)]
    cased = build_dataset("synth-words", split="test", test_size=30, case_sensitive=True)
    assert any(ch.isupper() for i in range(30) for ch in cased[i][1])


def test_synth_words_vocab_file(tmp_path):
    (tmp_path / "words.txt").write_text("alpha\nBeta\n\n")
    data = build_dataset("synth-words", split="test", test_size=20, vocab_file=str(tmp_path / "words.txt"))
    assert {"alpha", "beta"} & {data[i][1] for i in range(20)}
    (tmp_path / "bad.txt").write_text("naïve\n")
    with pytest.raises(UserError, match="'ï'"):
        build_dataset("synth-words", split="test", vocab_file=str(tmp_path / "bad.txt"))


def _word_png(path, width=40):
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (20, width), dtype=np.uint8)).save(path)


def test_text_folder_with_one_labels_file(tmp_path):
    lines = []
    for i in range(20):
        _word_png(tmp_path / f"w{i}.png", width=30 + i)
        lines.append(f"w{i}.png\t{'ab-' if i % 2 else 'Cd'}{i}")
    (tmp_path / "labels.tsv").write_text("\n".join(lines) + "\n")
    train = build_dataset("text-folder", split="train", path=str(tmp_path))
    test = build_dataset("text-folder", split="test", path=str(tmp_path))
    assert len(train) == 16 and len(test) == 2
    assert train.info.charset == "-0123456789Cabd"  # derived from every label, sorted
    image, text = train[0]
    assert image.shape[:2] == (1, 32) and text
    (tmp_path / "chars.txt").write_text("0123456789\nabCd")
    with pytest.raises(UserError, match=r"missing from the charset: '-'"):
        build_dataset("text-folder", split="train", path=str(tmp_path), charset_file=str(tmp_path / "chars.txt"))
    ok = build_dataset("text-folder", split="train", path=str(tmp_path), charset="0123456789abCd-")
    assert ok.info.charset == "0123456789abCd-"


def test_text_folder_with_split_folders_and_bad_files(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        _word_png(tmp_path / split / "a.png")
        _word_png(tmp_path / split / "b.png")
        (tmp_path / split / "labels.tsv").write_text("a.png\thello\nb.png\tworld\n")
    train = build_dataset("text-folder", split="train", path=str(tmp_path), val_fraction=0.5)
    assert len(train) == 1 and len(build_dataset("text-folder", split="test", path=str(tmp_path))) == 2
    (tmp_path / "test" / "labels.tsv").write_text("a.png hello\n")
    with pytest.raises(UserError, match=r"labels.tsv:1: expected 'file<TAB>text'"):
        build_dataset("text-folder", split="test", path=str(tmp_path))
    (tmp_path / "test" / "labels.tsv").write_text("c.png\thello\n")
    with pytest.raises(UserError, match="c.png not found"):
        build_dataset("text-folder", split="test", path=str(tmp_path))
    with pytest.raises(UserError, match="not a folder"):
        build_dataset("text-folder", split="test", path=str(tmp_path / "nowhere"))


def test_digit_strings_know_where_each_digit_is():
    test = build_dataset("digit-strings", split="test", source="sklearn", test_size=20, max_length=6)
    for i in range(len(test)):
        canvas, text, spans = test.render(i)
        assert len(spans) == len(text) and np.array_equal(canvas, (test[i][0][0].numpy() * 255).round())
        covered = np.zeros(canvas.shape[1], dtype=bool)
        for x0, x1 in spans:
            assert canvas[:, x0:x1].max() > 20  # every span holds its digit's ink
            covered[x0:x1] = True
        assert not canvas[:, ~covered].any()  # and no ink lies outside the spans
