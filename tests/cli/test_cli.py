"""The command line: train, eval, predict, list-models, demo; bad input exits 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from rnnvision.cli import main
from rnnvision.data import build_dataset
from rnnvision.engine import load_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY_SET = ["model.hidden_size=32", "model.head_hidden=16", "train.epochs=2", "train.batch_size=64", "train.lr=0.02"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnvision", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny digits run made through the CLI, and a few test digits saved as PNG files."""
    root = tmp_path_factory.mktemp("cli")
    args = ["train", str(CONFIGS / "digits_row_lstm.yaml"), "--out", str(root / "run"), "--quiet"]
    for item in TINY_SET:
        args += ["--set", item]
    assert main(args) == 0
    test = build_dataset("digits", split="test")
    files = []
    for i in range(3):
        path = root / f"digit{i}_true{int(test.labels[i])}.png"
        Image.fromarray((test.images[i, 0].numpy() * 1).astype("uint8")).resize((32, 32)).save(path)
        files.append(str(path))
    return root, files


def test_train_writes_the_documented_files(trained):
    root, _ = trained
    assert {"best.pt", "last.pt", "config.yaml", "metrics.jsonl"} <= {p.name for p in (root / "run").iterdir()}


def test_eval_json_is_exactly_one_object(trained, capsys):
    root, _ = trained
    assert main(["eval", str(root / "run" / "best.pt"), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out)
    assert out.count("\n") == 1 and set(metrics) == {"accuracy", "loss", "n"} and metrics["n"] == 360
    assert main(["eval", str(root / "run" / "best.pt"), "--split", "val", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 180


def test_predict_gives_class_and_probability_per_file(trained, capsys):
    root, files = trained
    assert main(["predict", str(root / "run" / "best.pt"), *files, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["predictions"]
    assert [r["file"] for r in results] == files
    assert all(0 <= r["class"] <= 9 and 0 < r["probability"] <= 1 and r["label"] == str(r["class"]) for r in results)
    # A file holding a test image at the model's size gets the model's answer on that image, as eval scores it
    test = build_dataset("digits", split="test")
    native = [str(root / f"native{i}.png") for i in range(8)]
    for i, path in enumerate(native):
        Image.fromarray(test.images[i, 0].numpy()).save(path)
    assert main(["predict", str(root / "run" / "best.pt"), *native, "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)["predictions"]
    model, _ = load_model(root / "run" / "best.pt")
    with torch.no_grad():
        probs = torch.softmax(model.eval()(test.images[:8].float() / 255), dim=1)
    assert [r["class"] for r in answers] == probs.argmax(dim=1).tolist()
    assert [r["probability"] for r in answers] == pytest.approx(probs.max(dim=1).values.tolist(), abs=1e-6)
    assert main(["predict", str(root / "run" / "best.pt"), files[0]]) == 0
    assert capsys.readouterr().out.startswith(files[0] + ": ")


def test_list_models_names_every_classifier(capsys):
    assert main(["list-models"]) == 0
    out = capsys.readouterr().out
    for name in ("row_rnn", "row_gru", "row_lstm", "row_bilstm", "pixel_lstm", "pixel_gru"):
        assert f"\n{name} " in "\n" + out


@pytest.mark.parametrize(
    "args,message",
    [
        (["predict", "{ckpt}", "{missing}"], "no such file or folder"),
        (["predict", "{ckpt}", "{text}"], "is not an image"),
        (["train", str(CONFIGS / "mnist_row_lstm.yaml"), "--set", "model.name=row_transformer"], "unknown model"),
        (["train", str(CONFIGS / "mnist_row_lstm.yaml"), "--set", "data.name=cifar"], "unknown dataset"),
        (["train", str(CONFIGS / "mnist_row_lstm.yaml"), "--set", "train.lrate=1"], "unknown key train.lrate"),
        (["train", str(CONFIGS / "mnist_row_lstm.yaml"), "--set", "train.epochs=many"], "train.epochs must be int"),
        (["train", "{missing}"], "config file not found"),
        (["eval", "{text}"], "not a readable checkpoint"),
        (["eval", "{ckpt}", "--dataset", "nope"], "unknown dataset"),
        (["eval", "{ckpt}", "--mirror"], "--mirror averages segmentation masks"),
        (
            ["train", str(CONFIGS / "mnist_row_lstm.yaml"), "--data-dir", "{missing}", "--out", "{out}"],
            "mnist: missing",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(trained, args, message, tmp_path):
    root, _ = trained
    (tmp_path / "note.png").write_text("not really a picture")
    values = {
        "ckpt": str(root / "run" / "best.pt"),
        "missing": str(tmp_path / "missing.png"),
        "text": str(tmp_path / "note.png"),
        "out": str(tmp_path / "out"),
    }
    done = run_cli(*[a.format(**values) for a in args])
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_usage_errors_exit_2_and_version_works():
    assert run_cli("frobnicate").returncode == 2
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("rnnvision ")


def test_demo_trains_and_draws_in_under_a_minute(tmp_path, capsys):
    # CPU seconds of this process, not wall time: other work on a shared machine (xdist workers,
    # trainings) stretches the wall clock but not the demo's own computation, which bounds its
    # wall time on an otherwise idle machine.
    started = time.process_time()
    assert main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == 0
    assert time.process_time() - started < 60
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.9
    for name in ("metrics.jsonl", "curves.png", "confusion.png", "predictions.png", "gates.png", "best.pt"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    assert main(["demo", "--out", str(tmp_path / "demo"), "--quiet"]) == 0  # a second demo replaces the first


def test_a_model_option_its_builder_refuses_exits_2_with_one_line(tmp_path):
    """The model raises ValueError (2x2 digits cannot be cut into 3x3 patches); the CLI says so in one line."""
    config = tmp_path / "renet.yaml"
    config.write_text(
        "model:\n  name: renet\n  hidden_sizes: [4]\n  patch_sizes: [3]\ndata:\n  name: digits\ntrain:\n  epochs: 1\n"
    )
    done = run_cli("train", str(config), "--out", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 2, done.stderr
    assert "model 'renet': img_size 8x8 must be a multiple of the product of patch_sizes (3)" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr and done.stdout == ""
