"""The synthetic long-range datasets: seeded, and the targets are what the definitions say."""

from __future__ import annotations

import pytest
import torch

from rnnvision.config import load_config
from rnnvision.data import build_dataset, list_datasets
from rnnvision.data.long_range import BLANK, DELIMITER, MEMORY
from rnnvision.errors import UserError


def _all(dataset) -> list[torch.Tensor]:
    return [torch.stack(column) for column in zip(*(dataset[i] for i in range(len(dataset))))]


def test_both_are_registered_for_their_tasks():
    assert "adding" in list_datasets("regress") and "copy-memory" in list_datasets("tag")


@pytest.mark.parametrize("name, option", [("adding", "length"), ("copy-memory", "delay")])
def test_a_seed_fixes_every_split_and_splits_and_seeds_differ(name, option):
    def draw(split: str, seed: int, **sizes) -> list[torch.Tensor]:
        return _all(build_dataset(name, split=split, seed=seed, **{option: 13}, **sizes))

    first, again = draw("val", 3, val_size=20), draw("val", 3, val_size=20, train_size=5)
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # the other splits' sizes do not matter
    assert not torch.equal(first[0], draw("test", 3, test_size=20)[0])
    assert not torch.equal(first[0], draw("val", 4, val_size=20)[0])


def test_adding_target_is_the_sum_of_the_two_marked_values_one_in_each_half():
    length = 11
    x, y = _all(build_dataset("adding", split="train", length=length, train_size=500, seed=1))
    assert x.shape == (500, length, 2) and y.shape == (500, 1) and x.dtype == y.dtype == torch.float32
    values, marker = x[..., 0], x[..., 1]
    assert bool(((values >= 0) & (values < 1)).all())
    assert bool(((marker == 0) | (marker == 1)).all())
    half = length // 2
    assert marker[:, :half].sum(1).eq(1).all() and marker[:, half:].sum(1).eq(1).all()
    for i in range(len(x)):  # the definition, one sequence at a time
        marked = [float(values[i, t]) for t in range(length) if marker[i, t] == 1]
        assert y[i, 0].item() == pytest.approx(sum(marked), abs=1e-6)
    assert set(marker[:, :half].argmax(1).tolist()) == set(range(half))  # every position of each half gets drawn
    assert set((half + marker[:, half:].argmax(1)).tolist()) == set(range(half, length))
    assert y.var().item() == pytest.approx(1 / 6, rel=0.2)  # the baseline MSE of answering the mean


def test_copy_memory_is_symbols_blanks_delimiter_then_recall():
    delay = 7
    x, y, scored = _all(build_dataset("copy-memory", split="test", delay=delay, test_size=300, seed=2))
    steps = delay + 2 * MEMORY
    assert x.shape == (300, steps, 10) and y.shape == scored.shape == (300, steps)
    assert bool((x.sum(-1) == 1).all())  # one-hot inputs
    classes = x.argmax(-1)
    symbols = classes[:, :MEMORY]
    assert bool(((symbols >= 1) & (symbols <= 8)).all()) and set(symbols.flatten().tolist()) == set(range(1, 9))
    assert bool((classes[:, MEMORY : MEMORY + delay - 1] == BLANK).all())
    assert bool((classes[:, MEMORY + delay - 1] == DELIMITER).all())
    assert bool((classes[:, -MEMORY:] == BLANK).all())
    assert torch.equal(y[:, -MEMORY:], symbols)  # recall the symbols in order after the delimiter
    assert bool((y[:, :-MEMORY] == BLANK).all())
    assert bool(scored[:, -MEMORY:].all()) and not scored[:, :-MEMORY].any()


def test_the_data_fills_the_model_options():
    config = load_config(
        None, base={"model": {"name": "sequence_tagger"}, "data": {"name": "copy-memory", "delay": 30}}
    )
    info = build_dataset("copy-memory", split="val", delay=30, val_size=2).info
    assert info.model_kwargs == {"in_features": 10, "num_classes": 9, "seq_len": 50}
    assert config.task == "tag"


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("adding", {"length": 1}, "data.length must be at least 2"),
        ("copy-memory", {"delay": 0}, "data.delay must be at least 1"),
        ("adding", {"train_size": 0}, "data.train_size must be at least 1"),
    ],
)
def test_impossible_options_are_one_line_errors(name, options, message):
    with pytest.raises(UserError, match=message) as info:
        build_dataset(name, split="train", **options)
    assert "\n" not in str(info.value)
