"""A tiny CRNN trained through the CLI on digit strings, and three test lines saved as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rnnvision.cli import main
from rnnvision.data import build_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = [
    "model.size=tiny",
    "data.source=sklearn",
    "data.train_size=64",
    "data.val_size=16",
    "data.test_size=24",
    "train.epochs=1",
    "train.batch_size=16",
]


def train_tiny_recognizer(root: Path) -> tuple[Path, list[str]]:
    """Train into ``root/run``; returns (best.pt, files named ``line<i>_<text>.png``)."""
    args = ["train", str(CONFIGS / "digit_strings_crnn.yaml"), "--out", str(root / "run"), "--quiet"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    test = build_dataset("digit-strings", split="test", source="sklearn", test_size=3)
    files = []
    for i in range(3):
        image, text = test[i]
        path = root / f"line{i}_{text}.png"
        Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8)).save(path)
        files.append(str(path))
    return root / "run" / "best.pt", files
