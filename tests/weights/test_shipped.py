"""Every shipped weights file: intact, within the size limits, and reproducing its catalogue's test metric.

The metric test evaluates the file, loaded exactly as users load it, on the full test split of its
dataset (real data: ../shared/data, and Fashion-MNIST from Debian's dataset-fashion-mnist).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from rnnvision.engine.evaluation import evaluate_checkpoint
from rnnvision.weights import get_weights, list_weights
from rnnvision.weights.catalogue import FOLDER, MAX_FILE_BYTES, MAX_TOTAL_BYTES, metric_tolerance
from rnnvision.weights.store import SCALE_SUFFIX, STORED_DTYPES, read_state_dict
from tests.conftest import SHARED_DATA

FASHION_ROOT = Path("/usr/share/datasets")  # dataset-fashion-mnist installs fashion-mnist/ here
NAMES = list_weights()
# datasets read from ../shared/data, and the folder each is read from
SHARED_FOLDERS = {"mnist": "mnist", "binarized-mnist": "mnist", "weizmann-horse": "weizmann-horse", "camvid": "camvid"}


def test_the_headline_weights_are_shipped():
    assert {"digits_row_lstm", "mnist_row_lstm"} <= set(NAMES)


def test_files_fit_the_size_limits_and_nothing_else_is_in_the_folder():
    entries = [get_weights(name) for name in NAMES]
    assert all(e.bytes <= MAX_FILE_BYTES and (FOLDER / e.file).stat().st_size == e.bytes for e in entries)
    assert sum(e.bytes for e in entries) <= MAX_TOTAL_BYTES
    assert sorted(p.name for p in FOLDER.iterdir()) == sorted(["catalogue.json", *(e.file for e in entries)])


@pytest.mark.parametrize("name", NAMES)
def test_file_matches_its_sha256_and_entry(name):
    entry = get_weights(name)
    state = read_state_dict(entry)  # checks the SHA-256
    assert entry.dtype in STORED_DTYPES and entry.metric in entry.test_metrics
    assert all(v.dtype not in (torch.float16, torch.int8) for v in state.values())  # widened on load
    assert not any(k.endswith(SCALE_SUFFIX) for k in state)
    assert entry.recipe == f"configs/{name}.yaml" and (Path(__file__).parents[2] / entry.recipe).is_file()
    started = entry.config["train"]["init_from"]  # '', a weights name, or a run folder's checkpoint
    assert not Path(started).is_absolute() and started.count("/") <= 1, started


def _data_root(name: str) -> Path | None:
    """The data root holding what the entry's test split is made from; skips when it is absent."""
    entry = get_weights(name)
    made_from = {entry.dataset, entry.config["data"].get("source")}
    if "fashion-mnist" in made_from:
        if not (FASHION_ROOT / "fashion-mnist").is_dir():
            pytest.skip(
                "Fashion-MNIST not found at /usr/share/datasets/fashion-mnist: apt-get install dataset-fashion-mnist"
            )
        return FASHION_ROOT
    folders = {SHARED_FOLDERS[d] for d in made_from if d in SHARED_FOLDERS}
    for folder in sorted(folders):
        if not (SHARED_DATA / folder).is_dir():
            pytest.skip(f"real {folder} data not found at {SHARED_DATA / folder} (see ../shared/data/SOURCES.md)")
    return SHARED_DATA if folders else None  # None: bundled data (the 8x8 digits and what is drawn from them)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_weights_reproduce_the_stated_test_metric(name):
    entry = get_weights(name)
    root = _data_root(name)
    start = time.perf_counter()
    metrics = evaluate_checkpoint(name, data_dir=root, device="cpu")
    seconds = time.perf_counter() - start
    assert metrics["n"] == entry.test_metrics["n"]
    assert abs(metrics[entry.metric] - entry.value) <= metric_tolerance(entry.metric), (
        metrics,
        entry.test_metrics,
        seconds,
    )
