"""``rnnvision demo``: the textbook row LSTM on the bundled 8x8 digits, trained and explained.

Trains ``row_lstm`` on scikit-learn's digits (no network), prints the test accuracy and writes
``runs/demo/`` with the metrics, the training curve, a confusion matrix, a grid of test images
with predicted and true labels, and the LSTM's gate activations row by row for one test image.
The recipe is the same as ``configs/digits_row_lstm.yaml`` (a test keeps the two equal).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from rnnvision.config import RunConfig, config_from_dict
from rnnvision.engine.trainer import TrainResult, train

DEMO_RECIPE = {
    "model": {"name": "row_lstm", "hidden_size": 128, "head_hidden": 64, "dropout": 0.1},
    "data": {"name": "digits"},
    "train": {"epochs": 30, "batch_size": 32, "lr": 0.005, "warmup_epochs": 1.0, "seed": 0, "device": "cpu"},
}


def demo_config() -> RunConfig:
    return config_from_dict(DEMO_RECIPE, source="demo recipe")


def run_demo(*, out_dir: str | Path = "runs/demo", quiet: bool = False) -> TrainResult:
    """Train the demo into a fresh directory, then put it in place of ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        result = train(demo_config(), out_dir=staging, quiet=quiet)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.out_dir = out_dir
    return result
