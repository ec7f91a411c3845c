"""Binarized MNIST and binarized 8x8 digits, for density estimation (task ``generate``).

The standard protocol behind published binarized-MNIST likelihoods (Salakhutdinov & Murray
2008; PixelRNN's 79.20 nats) is *stochastic* binarization: pixel value 1 with probability
``intensity / 255``. Here:

- ``test`` (and ``val``) are binarized once, with fixed seeds (``numpy.random.RandomState``,
  whose stream numpy keeps unchanged across versions), so every run and every checkpoint is scored
  on the same 0/1 images;
- ``train`` draws a fresh binarization every epoch: the trainer calls ``set_epoch(epoch)`` before
  each epoch and the sample depends only on (``seed``, epoch) — not on the DataLoader workers,
  the batch order, the model's own random numbers or whether the run was resumed — so a run is
  reproducible and a resumed run sees the same data as an uninterrupted one.

``binarize="threshold"`` (pixel = intensity > 127, i.e. p > 0.5) is deterministic and much easier
to model: its NLL is *not comparable* to published numbers, and its dataset name carries the
suffix ``-threshold`` so every result reports it.

Splits of MNIST: ``test`` is the official 10,000-image test set; ``val`` the last ``val_size``
images of the training file, ``train`` the rest (the usual 50,000 / 10,000 split by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from rnnvision.data.base import DatasetInfo, InfoDataset
from rnnvision.data.digits import digit_split_indices, load_digit_arrays
from rnnvision.data.idx import MNIST, mnist_split
from rnnvision.data.registry import register_dataset
from rnnvision.errors import UserError

Binarize = Literal["stochastic", "threshold"]
BINARIZE = ("stochastic", "threshold")
EVAL_SEEDS = {"val": 1, "test": 0}  # the fixed binarization of the evaluation splits
_CHUNK = 2048  # images binarized per draw (bounds the float64 buffer to ~13 MB at 28 x 28)


def stochastic_binarize(intensities: np.ndarray, seed: int | list[int]) -> np.ndarray:
    """uint8 intensities (N, ...) -> uint8 {0, 1}: 1 where ``u < intensity / 255``, ``u`` uniform from
    ``RandomState(seed)``, drawn in order over the array."""
    rng = np.random.RandomState(seed)
    out = np.empty(intensities.shape, dtype=np.uint8)
    for start in range(0, len(intensities), _CHUNK):
        block = intensities[start : start + _CHUNK]
        out[start : start + _CHUNK] = rng.random_sample(block.shape) < block / 255.0
    return out


class BinarizedImages(InfoDataset):
    """0/1 images from uint8 intensities (N, H, W); items are float32 (1, H, W) tensors.

    Args:
        intensities: the grey images.
        info: their :class:`DatasetInfo`.
        binarize: ``"stochastic"`` or ``"threshold"``.
        fixed_seed: binarize once with this seed (evaluation splits); ``None`` redraws per epoch.
        seed: with ``fixed_seed=None``, epoch ``e`` uses ``RandomState([seed, e])``.
    """

    def __init__(
        self, intensities: np.ndarray, info: DatasetInfo, *, binarize: str, fixed_seed: int | None, seed: int = 0
    ) -> None:
        if binarize not in BINARIZE:
            raise UserError(f"binarize must be one of {', '.join(BINARIZE)}, got {binarize!r}")
        self.intensities, self.info, self.binarize, self.seed = intensities, info, binarize, seed
        self.per_epoch = binarize == "stochastic" and fixed_seed is None
        if binarize == "threshold":
            self.binary = (intensities > 127).astype(np.uint8)
        else:
            self.binary = stochastic_binarize(intensities, fixed_seed if fixed_seed is not None else [seed, 0])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's binarization (stochastic training splits; otherwise nothing changes)."""
        if self.per_epoch and epoch != self.epoch:
            self.binary = stochastic_binarize(self.intensities, [self.seed, epoch])
            self.epoch = epoch

    def __len__(self) -> int:
        return len(self.binary)

    def __getitem__(self, index: int) -> Tensor:
        return torch.from_numpy(self.binary[index]).float()[None]  # (1, H, W)


def _info(name: str, binarize: str, size: tuple[int, int]) -> DatasetInfo:
    full = name if binarize == "stochastic" else f"{name}-threshold"
    return DatasetInfo(
        name=full,
        task="generate",
        in_chans=1,
        img_size=size,
        model_kwargs={"in_chans": 1, "img_size": size, "levels": 2},
    )


def _dataset(name: str, images: np.ndarray, split: str, binarize: str, seed: int) -> BinarizedImages:
    info = _info(name, binarize, (int(images.shape[1]), int(images.shape[2])))
    fixed = EVAL_SEEDS.get(split)
    return BinarizedImages(images, info, binarize=binarize, fixed_seed=fixed, seed=seed)


@register_dataset("binarized-mnist", task="generate")
def binarized_mnist(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    binarize: Binarize = "stochastic",
    val_size: int = 10000,
    seed: int = 0,
) -> BinarizedImages:
    """MNIST binarized stochastically (fresh each training epoch, fixed for val/test), 28x28."""
    images, _ = mnist_split(MNIST.fetch(root, download=download), split, val_size=val_size, empty_val=False)
    return _dataset("binarized-mnist", images, split, binarize, seed)


@register_dataset("binarized-digits", task="generate")
def binarized_digits(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    binarize: Binarize = "stochastic",
    seed: int = 0,
) -> BinarizedImages:
    """The embedded 8x8 digits, binarized like MNIST (``root`` and ``download`` are unused)."""
    images, _ = load_digit_arrays()
    return _dataset("binarized-digits", images[digit_split_indices()[split]], split, binarize, seed)
