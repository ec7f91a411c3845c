"""frame_digit (predict --preprocess mnist, the web page): a photo of a digit becomes what a digit model expects."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rnnvision.data.digit_frame import frame_digit
from rnnvision.data.idx import read_idx
from rnnvision.errors import UserError
from tests.conftest import shared_dataset


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def photo_of(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """``digit`` as a user photographs it: dark ink, 4x larger, somewhere on grey-white noisy paper."""
    ink = Image.fromarray(255 - digit).resize((112, 112), Image.BILINEAR)
    paper = Image.new("L", (300, 200), 230)
    paper.paste(
        ink,
        (int(rng.integers(0, 188)), int(rng.integers(0, 88))),
        Image.fromarray((np.asarray(ink) < 230).astype(np.uint8) * 255),
    )
    noisy = np.asarray(paper, dtype=np.float32) + rng.normal(0.0, 5.0, (200, 300))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def mnist_test_digits() -> np.ndarray:
    return read_idx(shared_dataset("mnist") / "t10k-images-idx3-ubyte.gz")[:200]


def test_an_mnist_digit_comes_back_as_itself(mnist_test_digits: np.ndarray) -> None:
    scores = [_correlation(np.asarray(frame_digit(Image.fromarray(d))), d) for d in mnist_test_digits]
    assert np.mean(scores) > 0.98


def test_a_photographed_digit_looks_like_the_mnist_original(mnist_test_digits: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    out = [np.asarray(frame_digit(photo_of(d, rng))) for d in mnist_test_digits]
    assert all(o.shape == (28, 28) for o in out)
    assert np.mean([_correlation(o, d) for o, d in zip(out, mnist_test_digits)]) > 0.9
    ink_rows = [np.nonzero(o.max(axis=1) > 0)[0] for o in out]
    assert all(rows.max() - rows.min() + 1 <= 22 for rows in ink_rows)  # fitted to the 20-pixel box


def test_centre_of_mass_lands_on_pixel_14() -> None:
    image = np.zeros((60, 90), dtype=np.uint8)
    image[5:25, 60:70] = 255  # a bright bar far from the centre, on black
    out = np.asarray(frame_digit(Image.fromarray(image)), dtype=np.float64)
    rows, cols = np.arange(28), np.arange(28)
    assert abs(out.sum(axis=1) @ rows / out.sum() - 14) <= 0.5
    assert abs(out.sum(axis=0) @ cols / out.sum() - 14) <= 0.5
    assert out[:, :4].max() == 0 and out.max() == 255  # light on dark is kept, not inverted


def test_small_sizes_fill_the_height_centred() -> None:
    image = Image.new("L", (100, 60), 255)
    image.paste(0, (40, 10, 50, 50))  # a dark bar on white, 10 wide and 40 high
    out = np.asarray(frame_digit(image, (8, 8)))
    rows, cols = np.nonzero(out > 0)
    assert rows.min() == 0 and rows.max() == 7  # the ink fills the height
    assert abs((cols.min() + cols.max()) / 2 - 3.5) <= 0.5  # centred


def test_a_blank_image_is_refused_in_one_line() -> None:
    with pytest.raises(UserError, match="no digit"):
        frame_digit(Image.new("L", (40, 40), 200))
