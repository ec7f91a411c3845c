"""Skewing (PixelRNN section 3.2): the reshape form equals the loop form, and unskew inverts it."""

from __future__ import annotations

import pytest
import torch

from rnnvision.ops.skew import diagonal_order, skew, skew_reference, unskew, unskew_reference

SIZES = [(1, 1), (1, 5), (4, 1), (3, 5), (5, 3), (6, 6)]


@pytest.mark.parametrize("height,width", SIZES)
def test_skew_matches_the_loop_and_unskew_inverts_it(height, width):
    x = torch.randn(2, 3, height, width)
    skewed = skew(x)
    assert skewed.shape == (2, 3, height, height + width - 1)
    assert torch.equal(skewed, skew_reference(x))
    assert torch.equal(unskew(skewed, width), x)
    noise = torch.randn_like(skewed)  # unskew reads only the on-image entries
    assert torch.equal(unskew(noise, width), unskew_reference(noise, width))


def test_each_diagonal_becomes_a_column_with_zeros_off_the_image():
    x = torch.arange(1, 7, dtype=torch.float32).reshape(2, 3)  # [[1, 2, 3], [4, 5, 6]]
    assert skew(x).tolist() == [[1, 2, 3, 0], [0, 4, 5, 6]]


def test_skew_passes_gradients_to_exactly_the_pixels_it_moves():
    x = torch.randn(2, 4, 3, requires_grad=True)
    weights = torch.randn(2, 4, 6)
    (skew(x) * weights).sum().backward()
    assert torch.equal(x.grad, unskew(weights, 3))


@pytest.mark.parametrize("height,width", SIZES)
def test_diagonal_order_lists_the_skewed_columns_without_their_zeros(height, width):
    x = torch.randn(height, width)
    order, sizes = diagonal_order(height, width)
    skewed = skew(x)
    columns = [skewed[max(0, t - width + 1) : min(t, height - 1) + 1, t] for t in range(height + width - 1)]
    assert sizes == [len(c) for c in columns] and sum(sizes) == height * width
    assert torch.equal(x.flatten()[order], torch.cat(columns))
    assert sorted(order.tolist()) == list(range(height * width))
