"""predict --preprocess mnist: the shipped MNIST classifier reads photos of digits (dark ink on paper,
anywhere in a larger picture) once they are framed as MNIST's digits were."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import rnnvision
from rnnvision.cli import main
from rnnvision.data.idx import read_idx
from rnnvision.errors import UserError
from tests.conftest import shared_dataset
from tests.data.test_digit_frame import photo_of

N = 100


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The first N MNIST test digits photographed (tests/data/test_digit_frame.photo_of), as PNG files."""
    folder = shared_dataset("mnist")
    digits = read_idx(folder / "t10k-images-idx3-ubyte.gz")[:N]
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:N]
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    paths = []
    for i, digit in enumerate(digits):
        paths.append(root / f"photo{i:03d}.png")
        photo_of(digit, rng).save(paths[-1])
    return paths, labels


def _accuracy(results, labels) -> float:
    return float(np.mean([r["class"] == int(y) for r, y in zip(results, labels)]))


def test_framing_makes_photos_readable(photos):
    paths, labels = photos
    model = rnnvision.load("mnist_row_lstm")
    framed = _accuracy(rnnvision.predict(model, paths, preprocess="mnist"), labels)
    raw = _accuracy(rnnvision.predict(model, paths), labels)
    assert framed >= 0.95  # the shipped model reads 99 % of MNIST's own test digits
    assert raw < 0.5  # as they are, the photos are not what the model was trained on


def test_preprocess_on_the_command_line(photos, capsys):
    paths, labels = photos
    assert main(["predict", "--weights", "mnist_row_lstm", *map(str, paths[:5]), "--preprocess", "mnist"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split(": ")[1].split()[0]) for line in lines] == [int(y) for y in labels[:5]]


def test_preprocess_refuses_a_model_that_is_not_a_digit_classifier(photos, tmp_path):
    with pytest.raises(UserError, match="1-channel classifier"):
        rnnvision.predict(rnnvision.load("digit_strings_crnn"), photos[0][:1], preprocess="mnist")
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(blank)
    with pytest.raises(UserError, match="no digit"):
        rnnvision.predict(rnnvision.load("mnist_row_lstm"), [blank], preprocess="mnist")
