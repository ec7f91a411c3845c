"""Binarized datasets: stochastic binarization fixed for val/test, fresh and reproducible per
training epoch; the fixed-threshold variant is labelled as such."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnvision.data import build_dataset, list_datasets
from rnnvision.data.binarized import BinarizedImages, stochastic_binarize
from rnnvision.errors import UserError
from tests.conftest import shared_dataset


def test_generation_datasets_are_registered():
    assert {"binarized-digits", "binarized-mnist"} <= set(list_datasets("generate"))


def test_evaluation_splits_are_binarized_once_with_fixed_seeds():
    a, b = (build_dataset("binarized-digits", split="test") for _ in range(2))
    assert len(a) == 360 and a[0].shape == (1, 8, 8) and a[0].dtype == torch.float32
    assert np.array_equal(a.binary, b.binary) and set(np.unique(a.binary)) == {0, 1}
    a.set_epoch(5)  # evaluation splits never change
    assert np.array_equal(a.binary, b.binary)
    val = build_dataset("binarized-digits", split="val", seed=3)  # the training seed does not touch val
    assert np.array_equal(val.binary, build_dataset("binarized-digits", split="val").binary)


def test_training_split_draws_a_fresh_reproducible_sample_each_epoch():
    train = build_dataset("binarized-digits", split="train")
    train.set_epoch(1)
    first = train.binary.copy()
    train.set_epoch(2)
    assert not np.array_equal(first, train.binary)
    other = build_dataset("binarized-digits", split="train")
    other.set_epoch(2)
    assert np.array_equal(other.binary, train.binary)  # depends on (seed, epoch) only
    reseeded = build_dataset("binarized-digits", split="train", seed=1)
    reseeded.set_epoch(2)
    assert not np.array_equal(reseeded.binary, train.binary)


def test_each_pixel_is_one_with_probability_intensity_over_255():
    intensities = np.full((4000, 5), [0, 51, 128, 204, 255], dtype=np.uint8)
    binary = stochastic_binarize(intensities, seed=0)
    frequencies = binary.mean(axis=0)
    assert frequencies[0] == 0 and frequencies[-1] == 1
    np.testing.assert_allclose(frequencies, [0, 0.2, 128 / 255, 0.8, 1], atol=0.03)  # 4000 draws: sd <= 0.008


def test_threshold_variant_is_deterministic_and_named_not_comparable():
    data = build_dataset("binarized-digits", split="train", binarize="threshold")
    assert data.info.name == "binarized-digits-threshold"
    before = data.binary.copy()
    data.set_epoch(3)
    assert np.array_equal(before, data.binary)
    assert np.array_equal(data.binary, (data.intensities > 127).astype(np.uint8))
    with pytest.raises(UserError, match="binarize must be"):
        BinarizedImages(data.intensities, data.info, binarize="otsu", fixed_seed=0)


def test_real_binarized_mnist_splits_and_the_fixed_test_sample():
    root = shared_dataset("mnist").parent
    test = build_dataset("binarized-mnist", split="test", root=root)
    assert len(test) == 10000 and test[0].shape == (1, 28, 28)
    # Saved expected output: the number of ones in the fixed stochastic binarization of the test
    # set. It changes only if the protocol (seed, order, comparison) changes; do that deliberately.
    assert int(test.binary.sum()) == 1038529
    assert abs(test.binary.mean() - test.intensities.mean() / 255) < 1e-3
    sizes = [len(build_dataset("binarized-mnist", split=s, root=root)) for s in ("train", "val")]
    assert sizes == [50000, 10000]
