"""`rnnvision export` on a trained checkpoint, and `rnnvision predict model.onnx` printing what the checkpoint prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnnvision.cli import main
from rnnvision.data import build_dataset

pytest.importorskip("onnxruntime")
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["model.size=tiny", "data.source=sklearn", "data.train_size=64", "data.val_size=16", "data.test_size=24",
        "train.epochs=1", "train.batch_size=16"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-cli")
    args = ["train", str(CONFIGS / "digit_strings_crnn.yaml"), "--out", str(root / "run"), "--quiet"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    test = build_dataset("digit-strings", split="test", source="sklearn", test_size=3)
    files = []
    for i in range(3):
        image, _ = test[i]
        path = root / f"line{i}.png"
        Image.fromarray((image[0].numpy() * 255).round().astype(np.uint8)).save(path)
        files.append(str(path))
    return root / "run" / "best.pt", files


@pytest.mark.slow
def test_predict_with_the_onnx_file_prints_what_the_checkpoint_prints(trained, capsys):
    checkpoint, files = trained
    assert main(["export", str(checkpoint), "--format", "onnx"]) == 0
    onnx_file = checkpoint.with_suffix(".onnx")
    assert capsys.readouterr().out.startswith(f"wrote {onnx_file} (onnx, ") and onnx_file.is_file()
    assert main(["predict", str(checkpoint), *files]) == 0
    from_checkpoint = capsys.readouterr().out
    assert main(["predict", str(onnx_file), *files]) == 0
    assert capsys.readouterr().out == from_checkpoint and from_checkpoint.count("\n") == 3


@pytest.mark.slow
def test_torchscript_and_int8_exports_are_written_beside_the_checkpoint(trained, capsys):
    checkpoint, files = trained
    assert main(["export", str(checkpoint), "--format", "torchscript"]) == 0
    assert checkpoint.with_suffix(".ts.pt").is_file()
    assert main(["export", str(checkpoint), "--quantize", "int8"]) == 0
    assert "int8 weights" in capsys.readouterr().out
    assert main(["predict", str(checkpoint.with_suffix(".int8.onnx")), *files]) == 0
    assert capsys.readouterr().out.count("\n") == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.pt"], "missing.pt"),
        (["{ckpt}", "--out", "{ckpt}"], "already exists"),
    ],
)
def test_export_mistakes_exit_2_with_one_line(trained, capsys, args, message):
    checkpoint, _ = trained
    assert main(["export", *(a.format(ckpt=checkpoint) for a in args)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
