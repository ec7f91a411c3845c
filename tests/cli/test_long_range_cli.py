"""The long-range lab through the CLI: train tiny recipes, evaluate them, see the gradient, refuse export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnvision.cli import main
from rnnvision.engine.gradflow import gradient_flow

pytestmark = pytest.mark.slow  # two tiny training runs

RECIPE = """model:
  name: {model}
  cell: {cell}
  hidden_size: 8
{extra}data:
  name: {data}
  {option}: {length}
  train_size: 96
  val_size: 32
  test_size: 32
train:
  epochs: 2
  batch_size: 16
  lr: 0.01
  seed: 0
  device: cpu
"""


def _train(root, name: str, **fields) -> str:
    config = root / f"{name}.yaml"
    config.write_text(RECIPE.format(**fields))
    assert main(["train", str(config), "--out", str(root / name), "--quiet"]) == 0
    return str(root / name / "best.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("long_range")
    return {
        "adding": _train(
            root,
            "adding",
            model="sequence_regressor",
            cell="lstm",
            extra="  gate_init: chrono\n",
            data="adding",
            option="length",
            length=12,
        ),
        "copy": _train(
            root, "copy", model="sequence_tagger", cell="mingru", extra="", data="copy-memory", option="delay", length=3
        ),
    }


def test_training_writes_the_task_metrics(runs):
    summary = json.loads((Path(runs["adding"]).parent / "results.json").read_text())
    assert summary["data"] == "adding" and 0 <= summary["test"]["mse"] < 10 and summary["test"]["n"] == 32
    summary = json.loads((Path(runs["copy"]).parent / "results.json").read_text())
    assert set(summary["test"]) == {"accuracy", "sequence_accuracy", "loss", "n"}
    assert 0 <= summary["test"]["accuracy"] <= 1


def test_eval_prints_the_same_test_metrics(runs, capsys):
    assert main(["eval", runs["copy"], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((Path(runs["copy"]).parent / "results.json").read_text())["test"]
    assert printed["accuracy"] == pytest.approx(saved["accuracy"]) and printed["loss"] == pytest.approx(saved["loss"])


def test_gradflow_reaches_every_step_of_a_sequence(runs, tmp_path, capsys):
    out = tmp_path / "grad.png"
    assert main(["gradflow", runs["adding"], "--out", str(out), "--n", "8"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "forget gate" in capsys.readouterr().out
    flow = gradient_flow(runs["adding"], n=8)
    assert flow.grad_norm.shape == (12,) and flow.grad_norm.min() > 0 and flow.gates["forget"].shape == (12,)
    tagged = gradient_flow(runs["copy"], n=4)
    assert tagged.grad_norm.shape == (23,) and not tagged.gates  # 3 + 20 steps; minGRU has no gates to show


def test_export_refuses_in_one_line(runs, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", runs["adding"], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot export a regress model" in err and not out.exists()


def test_an_impossible_length_is_one_line_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "adding.yaml"
    config.write_text(
        RECIPE.format(model="sequence_regressor", cell="gru", extra="", data="adding", option="length", length=12)
    )
    assert main(["train", str(config), "--set", "data.length=1", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.length must be at least 2" in err
    assert not (tmp_path / "run").exists()
