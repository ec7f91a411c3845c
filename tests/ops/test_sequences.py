"""Every image-to-sequence adapter round-trips, and lays the pixels out as documented."""

from __future__ import annotations

import pytest
import torch

from rnnvision.ops.sequences import (
    columns_to_image,
    image_to_columns,
    image_to_patches,
    image_to_pixels,
    image_to_rows,
    image_to_sequence,
    patches_to_image,
    pixel_permutation,
    pixels_to_image,
    rows_to_image,
    sequence_shape,
)

IMAGES = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)  # (B, C, H, W)


def test_rows_round_trip_and_layout():
    seq = image_to_rows(IMAGES)
    assert seq.shape == (2, 4, 18)
    torch.testing.assert_close(seq[1, 2, 6:12], IMAGES[1, 1, 2])  # row 2, channel 1
    torch.testing.assert_close(rows_to_image(seq, 3), IMAGES)


def test_columns_round_trip_and_layout():
    seq = image_to_columns(IMAGES)
    assert seq.shape == (2, 6, 12)
    torch.testing.assert_close(seq[0, 5, 4:8], IMAGES[0, 1, :, 5])  # column 5, channel 1
    torch.testing.assert_close(columns_to_image(seq, 3), IMAGES)


def test_pixels_raster_order_round_trip():
    seq = image_to_pixels(IMAGES)
    assert seq.shape == (2, 24, 3)
    torch.testing.assert_close(seq[1, 1 * 6 + 4], IMAGES[1, :, 1, 4])  # pixel (1, 4)
    torch.testing.assert_close(pixels_to_image(seq, 4, 6), IMAGES)


def test_permuted_pixels_round_trip_with_a_fixed_seeded_permutation():
    perm = pixel_permutation(24, seed=7)
    assert torch.equal(perm, pixel_permutation(24, seed=7)) and not torch.equal(perm, pixel_permutation(24, seed=8))
    assert sorted(perm.tolist()) == list(range(24))
    seq = image_to_pixels(IMAGES, perm)
    torch.testing.assert_close(seq[:, 0], image_to_pixels(IMAGES)[:, perm[0]])
    torch.testing.assert_close(pixels_to_image(seq, 4, 6, perm), IMAGES)


def test_patches_round_trip_and_layout():
    seq = image_to_patches(IMAGES, 2)
    assert seq.shape == (2, 6, 12)
    torch.testing.assert_close(seq[0, 1], IMAGES[0, :, 0:2, 2:4].reshape(-1))  # second patch, raster order
    torch.testing.assert_close(patches_to_image(seq, 4, 6, 2), IMAGES)
    with pytest.raises(ValueError, match="not a multiple"):
        image_to_patches(IMAGES, 4)


@pytest.mark.parametrize("reader", ["rows", "columns", "pixels", "patches"])
def test_sequence_shape_matches_the_adapters(reader):
    seq = image_to_sequence(IMAGES, reader, patch=2)
    assert seq.shape[1:] == sequence_shape(reader, 3, 4, 6, patch=2)
