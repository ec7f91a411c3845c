"""Synthetic long-range tasks, generated from a seed: ``adding`` and ``copy-memory``.

Both test how far back a recurrent network can carry information; neither needs files.

``adding`` (Hochreiter & Schmidhuber 1997, experiment 4; in the form of Le et al. 2015 and
Arjovsky et al. 2016): a sequence of ``length`` steps with two channels, a value drawn from
U(0, 1) and a marker that is 1 at exactly two steps, one drawn uniformly from the first half
(``[0, length // 2)``) and one from the second (``[length // 2, length)``), 0 elsewhere. The
target is the sum of the two marked values. Always answering 1 (the mean of the target) scores
an MSE of Var(U1 + U2) = 1/6 ~ 0.167: the baseline a network that remembers nothing reaches.

``copy-memory`` (Arjovsky et al. 2016, section 4.1): ``delay + 20`` steps. The first 10 are
symbols drawn uniformly from an alphabet of 8 (classes 1..8), then ``delay - 1`` blanks (class
0), a delimiter (class 9), and 10 more blanks during which the network must write the 10
symbols back. Inputs are one-hot over the 10 classes; targets, one per step, are blank (0)
everywhere but the last 10 steps, which hold the symbols. The loss is the cross-entropy over
every step; the metric is the accuracy on the 10 recalled symbols (the ``scored`` steps). A
network that remembers nothing answers blank until the delimiter and guesses after it: a mean
cross-entropy of ``10 ln 8 / (delay + 20)`` per step and 1/8 of the symbols right.

Every split is drawn from its own generator, seeded ``3 * seed + k`` with k = 0, 1, 2 for
train, val, test, so a split does not change with the sizes of the others, and different seeds
never share a generator.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from rnnvision.data.base import SPLITS, DatasetInfo
from rnnvision.data.registry import register_dataset
from rnnvision.errors import UserError

ALPHABET = 8  # data symbols, classes 1..8
MEMORY = 10  # symbols to remember
BLANK, DELIMITER = 0, ALPHABET + 1
INPUT_CLASSES = ALPHABET + 2  # blank, 8 symbols, delimiter
OUTPUT_CLASSES = ALPHABET + 1  # blank and the 8 symbols (the delimiter is never a target)


def split_generator(seed: int, split: str) -> torch.Generator:
    """The generator of ``split``: seeded ``3 * seed + k`` (k = 0, 1, 2 for train, val, test)."""
    return torch.Generator().manual_seed(3 * seed + SPLITS.index(split))


def _check_size(name: str, value: int, low: int) -> None:
    if value < low:
        raise UserError(f"data.{name} must be at least {low}, got {value}")


# -- adding ----------------------------------------------------------------------------------------
def draw_adding(n: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` adding problems: values (n, length) in U(0, 1) and the marked positions (n, 2), one per half."""
    half = length // 2
    values = torch.rand(n, length, generator=generator)
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    return values, torch.stack([first, second], dim=1)


def adding_inputs(values: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """values (n, T), positions (n, 2) -> inputs (n, T, 2) = [value, marker] and targets (n, 1), the marked sum."""
    marker = torch.zeros_like(values).scatter_(1, positions, 1.0)  # (n, T)
    target = values.gather(1, positions).sum(1, keepdim=True)  # (n, 1)
    return torch.stack([values, marker], dim=-1), target


class AddingDataset(Dataset):
    """Items ``(x, y)``: x (length, 2) float32 = [value, marker] per step, y (1,) the sum of the two marked values."""

    def __init__(self, values: Tensor, positions: Tensor, info: DatasetInfo) -> None:
        self.values, self.positions, self.info = values, positions, info

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, y = adding_inputs(self.values[index : index + 1], self.positions[index : index + 1])
        return x[0], y[0]


def _split_size(split: str, **sizes: int) -> int:
    """The item count of ``split`` among ``train_size``, ``val_size`` and ``test_size`` (each at least 1)."""
    size = sizes[f"{split}_size"]
    _check_size(f"{split}_size", size, 1)
    return size


@register_dataset("adding", task="regress")
def adding(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    length: int = 100,
    seed: int = 0,
    train_size: int = 10_000,
    val_size: int = 1_000,
    test_size: int = 1_000,
) -> AddingDataset:
    """The adding problem with sequences of ``length`` steps (``root`` and ``download`` are unused)."""
    _check_size("length", length, 2)
    size = _split_size(split, train_size=train_size, val_size=val_size, test_size=test_size)
    values, positions = draw_adding(size, length, split_generator(seed, split))
    info = DatasetInfo(
        name="adding", task="regress", in_chans=2, model_kwargs={"in_features": 2, "num_outputs": 1, "seq_len": length}
    )
    return AddingDataset(values, positions, info)


# -- copy memory -----------------------------------------------------------------------------------
def draw_copy_symbols(n: int, generator: torch.Generator) -> Tensor:
    """The ``n`` x 10 symbols to remember, classes 1..8."""
    return torch.randint(1, ALPHABET + 1, (n, MEMORY), generator=generator)


def copy_memory_inputs(symbols: Tensor, delay: int) -> tuple[Tensor, Tensor, Tensor]:
    """symbols (n, 10) -> inputs (n, S, 10) one-hot, target classes (n, S), scored steps (n, S) bool; S = delay + 20.

    Input: the symbols, ``delay - 1`` blanks, the delimiter, 10 blanks. Target: blanks, then the symbols
    in the last 10 steps, which are the scored ones.
    """
    n, steps = symbols.shape[0], delay + 2 * MEMORY
    inputs = torch.full((n, steps), BLANK, dtype=torch.int64)
    inputs[:, :MEMORY] = symbols
    inputs[:, MEMORY + delay - 1] = DELIMITER
    targets = torch.full((n, steps), BLANK, dtype=torch.int64)
    targets[:, -MEMORY:] = symbols
    scored = torch.zeros(n, steps, dtype=torch.bool)
    scored[:, -MEMORY:] = True
    return F.one_hot(inputs, INPUT_CLASSES).float(), targets, scored


class CopyMemoryDataset(Dataset):
    """Items ``(x, y, scored)``: x (S, 10) one-hot float32, y (S,) int64 classes, scored (S,) bool; S = delay + 20."""

    def __init__(self, symbols: Tensor, delay: int, info: DatasetInfo) -> None:
        self.symbols, self.delay, self.info = symbols, delay, info

    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        x, y, scored = copy_memory_inputs(self.symbols[index : index + 1], self.delay)
        return x[0], y[0], scored[0]


@register_dataset("copy-memory", task="tag")
def copy_memory(
    *,
    split: str,
    root: str | Path | None = None,
    download: bool = False,
    delay: int = 100,
    seed: int = 0,
    train_size: int = 10_000,
    val_size: int = 1_000,
    test_size: int = 1_000,
) -> CopyMemoryDataset:
    """Recall 10 symbols after ``delay`` blank steps (``root`` and ``download`` are unused)."""
    _check_size("delay", delay, 1)
    size = _split_size(split, train_size=train_size, val_size=val_size, test_size=test_size)
    class_names = ("blank", *(str(k) for k in range(1, ALPHABET + 1)))
    info = DatasetInfo(
        name="copy-memory",
        task="tag",
        class_names=class_names,
        in_chans=INPUT_CLASSES,
        model_kwargs={"in_features": INPUT_CLASSES, "num_classes": OUTPUT_CLASSES, "seq_len": delay + 2 * MEMORY},
    )
    return CopyMemoryDataset(draw_copy_symbols(size, split_generator(seed, split)), delay, info)
