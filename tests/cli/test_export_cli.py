"""`rnnvision export` on a trained checkpoint, and `rnnvision predict model.onnx` printing what the checkpoint prints."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnnvision.cli import main
from tests.cli.recognizer import train_tiny_recognizer
from tests.export.graphs import ops_as_loaded

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_recognizer(tmp_path_factory.mktemp("export-cli"))


@pytest.mark.slow
def test_predict_with_the_onnx_file_prints_what_the_checkpoint_prints(trained, capfd):
    checkpoint, files = trained
    assert main(["export", str(checkpoint), "--format", "onnx"]) == 0
    onnx_file = checkpoint.with_suffix(".onnx")
    written = capfd.readouterr()  # stderr too, at the file descriptor: torch's C++ warnings land there
    assert written.out.startswith(f"wrote {onnx_file} (onnx, ") and onnx_file.is_file() and written.err == ""
    assert main(["predict", str(checkpoint), *files]) == 0
    from_checkpoint = capfd.readouterr().out
    assert main(["predict", str(onnx_file), *files]) == 0
    assert capfd.readouterr().out == from_checkpoint and from_checkpoint.count("\n") == 3


@pytest.mark.slow
def test_torchscript_and_int8_exports_are_written_beside_the_checkpoint(trained, capsys):
    checkpoint, files = trained
    assert main(["export", str(checkpoint), "--format", "torchscript"]) == 0
    assert checkpoint.with_suffix(".ts.pt").is_file()
    assert main(["export", str(checkpoint), "--quantize", "int8"]) == 0
    printed = capsys.readouterr().out
    assert "int8 weights" in printed and "its convolutions stay float32: --calibrate" in printed  # crnn has some
    assert main(["predict", str(checkpoint.with_suffix(".int8.onnx")), *files]) == 0
    assert capsys.readouterr().out.count("\n") == 3


@pytest.mark.slow
def test_calibrated_int8_quantizes_the_convolutions_and_predicts_the_same_lines(trained, tmp_path, capsys):
    import onnx

    checkpoint, files = trained
    out = tmp_path / "calibrated.onnx"
    assert main(["export", str(checkpoint), "--quantize", "int8", "--calibrate", "20", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "int8 weights and convolutions" in printed and "stay float32" not in printed
    graph = onnx.load(str(out))
    assert any(node.op_type == "DequantizeLinear" for node in graph.graph.node)
    assert "QLinearConv" in ops_as_loaded(out, tmp_path)
    assert {p.key: p.value for p in graph.metadata_props}[
        "quantization"
    ] == "int8 dynamic, convolutions static (calibrated)"
    assert main(["predict", str(out), *files]) == 0
    assert capsys.readouterr().out.count("\n") == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.pt"], "missing.pt"),
        (["{ckpt}", "--out", "{ckpt}"], "already exists"),
        (["{ckpt}", "--calibrate", "8"], "--calibrate serves only an int8 ONNX export"),
        (["{ckpt}", "--quantize", "int8", "--calibrate", "-1"], "positive number of training images"),
    ],
)
def test_export_mistakes_exit_2_with_one_line(trained, capsys, args, message):
    checkpoint, _ = trained
    assert main(["export", *(a.format(ckpt=checkpoint) for a in args)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_int8_export_prints_its_one_line_and_nothing_on_stderr(fmt, tmp_path):
    """onnxruntime's quantizer logs advice and torch warns once per process that its quantized
    tensors are deprecated; neither reaches the user. A fresh process, since torch's warning is once only."""
    out = tmp_path / ("r.onnx" if fmt == "onnx" else "r.ts.pt")
    args = ["export", "--weights", "mnist_row_lstm", "--format", fmt, "--quantize", "int8", "--out", str(out)]
    result = subprocess.run([sys.executable, "-m", "rnnvision", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.startswith(f"wrote {out} ({fmt}, int8 weights")
    assert result.stderr == ""
