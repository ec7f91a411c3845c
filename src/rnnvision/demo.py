"""``rnnvision demo``: the textbook row LSTM on the bundled 8x8 digits, trained and explained.

Trains ``row_lstm`` on scikit-learn's digits (no network), prints the test accuracy and writes
``runs/demo/`` with the metrics, the training curve, a confusion matrix, a grid of test images
with predicted and true labels, and the LSTM's gate activations row by row for one test image.
The recipe is the same as ``configs/digits_row_lstm.yaml`` (a test keeps the two equal).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rnnvision.config import RunConfig, config_from_dict
from rnnvision.engine.trainer import TrainResult, train
from rnnvision.errors import UserError
from rnnvision.outputs import MARKER, RunLock, new_run_id, output_dir_marker, read_marker, write_marker

DEMO_RECIPE = {
    "model": {"name": "row_lstm", "hidden_size": 128, "head_hidden": 64, "dropout": 0.1},
    "data": {"name": "digits"},
    "train": {"epochs": 30, "batch_size": 32, "lr": 0.005, "warmup_epochs": 1.0, "seed": 0, "device": "cpu"},
}


def demo_config() -> RunConfig:
    return config_from_dict(DEMO_RECIPE, source="demo recipe")


def run_demo(*, out_dir: str | Path = "runs/demo", quiet: bool = False) -> TrainResult:
    """Train the demo and write it into ``out_dir``: a new or empty folder, or an earlier demo's.

    An earlier demo's files are replaced one by one once the new run has finished (it trains in
    ``out_dir/.rnnvision-staging``); anything else in the folder is left alone, and a folder
    holding anything but a demo of ours is refused.
    """
    out_dir = Path(out_dir)
    marker = output_dir_marker(out_dir)
    if marker is not None and marker.get("kind") != "demo":
        raise UserError(
            f"--out {out_dir} holds an rnnvision {marker.get('kind')} run; choose another folder for the demo"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir):
        write_marker(out_dir, run_id=(marker or {}).get("run_id") or new_run_id(), kind="demo")
        staging = out_dir / ".rnnvision-staging"
        if staging.exists():  # left by a killed demo: ours, in a folder that is ours
            shutil.rmtree(staging)
        result = train(demo_config(), out_dir=staging, quiet=quiet)
        for produced in sorted(staging.iterdir()):
            if produced.name != MARKER:
                os.replace(produced, out_dir / produced.name)
        staged = read_marker(staging)
        assert staged is not None  # train wrote it
        write_marker(out_dir, run_id=staged["run_id"], kind="demo")  # the id last.pt carries
        (staging / MARKER).unlink()
        staging.rmdir()
    result.out_dir = out_dir
    return result
