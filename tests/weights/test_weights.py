"""The weights registry: loading by name, refusing changed files, downloads, the CLI's --weights, making entries.

Fast: the shipped 8x8 digits weights, and a tiny PixelRNN turned into weights in a temporary
catalogue for the generative commands. Downloads are tested on 127.0.0.1, never the internet.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save

import rnnvision
from rnnvision.cli import main
from rnnvision.config import config_from_dict
from rnnvision.data import build_dataset
from rnnvision.engine import load_checkpoint, train
from rnnvision.errors import UserError
from rnnvision.weights import catalogue, get_weights, list_weights
from rnnvision.weights.catalogue import WeightsEntry, write_entry
from rnnvision.weights.make import make_weights
from rnnvision.weights.store import SCALE_SUFFIX, decode, narrow, read_state_dict, to_bytes, widen
from tests.serve.conftest import CONFIGS, save_recipe_model

DIGITS = "digits_row_lstm"


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnvision: error: ") and "Traceback" not in err, err
    return err


@pytest.fixture
def private_catalogue(tmp_path, monkeypatch) -> Path:
    """A copy of the digits entry and file in a folder the registry reads instead of the package's."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    entry = get_weights(DIGITS)
    shutil.copy(catalogue.FOLDER / entry.file, folder / entry.file)
    write_entry(entry, folder)
    monkeypatch.setattr(catalogue, "FOLDER", folder)
    return folder


@pytest.fixture
def digit_png(tmp_path) -> Path:
    image, label = build_dataset("digits", split="test")[0]
    path = tmp_path / f"digit{int(label)}.png"
    Image.fromarray(np.rint(image[0].numpy() * 255).astype(np.uint8)).save(path)
    return path


def test_load_by_name_gives_a_checkpoint_shaped_payload(tmp_path):
    model, payload = rnnvision.load(DIGITS)
    entry = get_weights(DIGITS)
    assert not model.training and payload["weights"] == DIGITS and payload["model_name"] == entry.model
    assert {"task", "config", "meta", "state_dict", "metrics", "num_params"} <= set(payload)
    assert all(v.dtype == torch.float32 for v in payload["state_dict"].values() if v.is_floating_point())
    assert payload["metrics"]["test"] == entry.test_metrics
    assert entry.preprocessing == {
        "img_size": [8, 8],
        "in_chans": 1,
        "normalization": catalogue.NORMALIZATION,
        "class_names": [str(i) for i in range(10)],
    }


def test_a_changed_byte_is_refused(private_catalogue, capsys):
    path = private_catalogue / get_weights(DIGITS).file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the SHA-256"):
        rnnvision.load(DIGITS)
    assert "does not match the SHA-256" in _one_line_error(capsys, ["eval", "--weights", DIGITS])


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields (base URL, folder, requested paths)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served, requests
    httpd.shutdown()


def _url_only_entry(folder: Path, url: str) -> WeightsEntry:
    """The digits entry, published at ``url`` and not shipped in ``folder``."""
    entry = WeightsEntry(**{**get_weights(DIGITS).to_json(), "url": url})
    write_entry(entry, folder)
    return entry


def test_an_entry_with_a_url_is_downloaded_into_the_cache_once(tmp_path, server, monkeypatch):
    base, served, requests = server
    entry = get_weights(DIGITS)
    shipped = read_state_dict(entry)
    shutil.copy(catalogue.FOLDER / entry.file, served / entry.file)
    folder, cache = tmp_path / "shipped", tmp_path / "cache"
    _url_only_entry(folder, f"{base}/{entry.file}")
    monkeypatch.setattr(catalogue, "FOLDER", folder)
    monkeypatch.setenv("RNNVISION_WEIGHTS", str(cache))
    _, payload = rnnvision.load(DIGITS)
    assert [p.name for p in cache.iterdir()] == [entry.file] and len(requests) == 1  # no temporary file left
    assert all(torch.equal(payload["state_dict"][k], v) for k, v in shipped.items())
    rnnvision.load(DIGITS)
    assert len(requests) == 1  # read from the cache the second time


def test_a_corrupt_download_is_refused_and_leaves_nothing(tmp_path, server, monkeypatch):
    base, served, _ = server
    entry = get_weights(DIGITS)
    (served / entry.file).write_bytes((catalogue.FOLDER / entry.file).read_bytes()[:-1] + b"x")
    folder, cache = tmp_path / "shipped", tmp_path / "cache"
    _url_only_entry(folder, f"{base}/{entry.file}")
    monkeypatch.setattr(catalogue, "FOLDER", folder)
    monkeypatch.setenv("RNNVISION_WEIGHTS", str(cache))
    with pytest.raises(UserError, match="could not download the weights 'digits_row_lstm'.*SHA-256 mismatch"):
        rnnvision.load(DIGITS)
    assert not cache.exists() or not list(cache.iterdir())


def test_an_unreachable_url_is_one_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "shipped"
    _url_only_entry(folder, "http://127.0.0.1:9/digits_row_lstm.safetensors")
    monkeypatch.setattr(catalogue, "FOLDER", folder)
    monkeypatch.setenv("RNNVISION_WEIGHTS", str(tmp_path / "cache"))
    assert "could not download the weights" in _one_line_error(capsys, ["eval", "--weights", DIGITS])


def test_list_weights(capsys):
    assert main(["list-weights"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_weights()
    digits, line = get_weights(DIGITS), lines[list_weights().index(DIGITS)]
    assert line.split()[1:4] == [digits.model, digits.dataset, "accuracy"] and line.endswith(f"MB {digits.dtype}")
    assert f"{100 * digits.value:.2f} %" in line
    assert main(["list-weights", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["weights"]
    assert [w["name"] for w in listed] == list_weights()
    assert listed[list_weights().index(DIGITS)]["preprocessing"]["img_size"] == [8, 8]


def test_eval_with_weights_reproduces_the_entry(capsys):
    assert main(["eval", "--weights", DIGITS, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == get_weights(DIGITS).test_metrics
    assert main(["eval", DIGITS, "--json"]) == 0  # the positional takes a name too
    assert json.loads(capsys.readouterr().out) == get_weights(DIGITS).test_metrics


def test_predict_with_weights(digit_png, capsys):
    assert main(["predict", "--weights", DIGITS, str(digit_png), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["predictions"]
    assert result["label"] == digit_png.stem[-1]


def test_export_and_gradflow_with_weights(tmp_path, capsys):
    out = tmp_path / "digits.ts.pt"
    assert main(["export", "--weights", DIGITS, "--format", "torchscript", "--out", str(out)]) == 0
    assert out.is_file() and "torchscript" in capsys.readouterr().out
    assert main(["gradflow", "--weights", DIGITS, "--n", "4", "--out", str(tmp_path / "grad.png")]) == 0
    assert (tmp_path / "grad.png").is_file()


@pytest.mark.slow
def test_init_from_takes_a_weights_name(tmp_path):
    entry = get_weights(DIGITS)
    raw = {section: dict(entry.config[section]) for section in ("model", "data", "train")}
    raw["train"].update(epochs=1, lr=0.0, weight_decay=0.0, init_from=DIGITS, device="cpu")
    result = train(config_from_dict(raw), out_dir=tmp_path / "ft", quiet=True)
    shipped, tuned = read_state_dict(entry), result.model.state_dict()
    assert all(torch.equal(shipped[k], tuned[k]) for k in shipped)


@pytest.fixture
def tiny_generator(tmp_path, monkeypatch) -> WeightsEntry:
    """A tiny PixelRNN on the 8x8 digits, turned into weights by make_weights in a private catalogue."""
    recipe = CONFIGS / "digits_pixelrnn_row.yaml"
    run = tmp_path / "run"
    save_recipe_model(recipe.name, ["model.hidden=8", "model.layers=1", "model.out_hidden=16"], run / "best.pt")
    folder = tmp_path / "shipped"
    made = make_weights(recipe, run, folder=folder)
    monkeypatch.setattr(catalogue, "FOLDER", folder)
    return made.entry


def test_make_weights_then_generate_and_complete_by_name(tiny_generator, digit_png, tmp_path, capsys):
    entry = tiny_generator
    assert entry.name == "digits_pixelrnn_row" and entry.dtype == "float16" and entry.metric == "nll_nats"
    assert abs(entry.value - entry.float32_test_metrics["nll_nats"]) <= 0.2
    assert main(["eval", "--weights", entry.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nll_nats"] == pytest.approx(entry.value, abs=1e-4)
    assert main(["generate", "--weights", entry.name, "--n", "2", "--out", str(tmp_path / "g.png")]) == 0
    assert (
        main(["complete", "--weights", entry.name, str(digit_png), "--samples", "1", "--out", str(tmp_path / "c.png")])
        == 0
    )
    assert (tmp_path / "g.png").is_file() and (tmp_path / "c.png").is_file()


def test_make_weights_stores_float32_when_float16_loses_too_much(tmp_path, monkeypatch):
    from rnnvision.weights import make

    run = tmp_path / "run"
    save_recipe_model("digits_row_lstm.yaml", ["model.hidden_size=8", "model.head_hidden=8"], run / "best.pt")
    monkeypatch.setattr(make, "metric_tolerance", lambda metric: -1.0)  # any change at all is too much
    made = make_weights(CONFIGS / "digits_row_lstm.yaml", run, folder=tmp_path / "shipped")
    assert made.entry.dtype == "float32" and set(made.refused) == {"float16", "int8"}
    assert made.entry.test_metrics == made.entry.float32_test_metrics
    monkeypatch.setattr(catalogue, "FOLDER", tmp_path / "shipped")
    stored, original = read_state_dict(made.entry), load_checkpoint(run / "best.pt")["state_dict"]
    assert all(torch.equal(stored[k], original[k]) for k in original)


def test_int8_storage_keeps_every_weight_within_half_a_step_of_its_row():
    torch.manual_seed(0)
    state = {
        "matrix": torch.randn(64, 32) * torch.logspace(-3, 1, 64)[:, None],  # rows of very different sizes
        "kernel": torch.randn(32, 8, 3, 3),
        "zeros": torch.zeros(32, 64),
        "bias": torch.randn(64),
        "count": torch.tensor(7),
    }
    stored = narrow(state, "int8")
    assert stored["matrix"].dtype == stored["kernel"].dtype == torch.int8 and stored["bias"].dtype == torch.float16
    assert set(stored) == set(state) | {f"{k}{SCALE_SUFFIX}" for k in ("matrix", "kernel", "zeros")}
    loaded = widen(decode(save(stored), source="test"))
    assert set(loaded) == set(state) and torch.equal(loaded["count"], state["count"])
    assert torch.equal(loaded["zeros"], state["zeros"])
    for key in ("matrix", "kernel"):
        rows = state[key].reshape(len(state[key]), -1)
        step = rows.abs().amax(dim=1, keepdim=True) / 127
        assert ((loaded[key].reshape(rows.shape) - rows).abs() <= step / 2 * (1 + 1e-6)).all()
    assert torch.allclose(loaded["bias"], state["bias"], rtol=1e-3)


def test_make_weights_stores_int8_when_float16_does_not_fit(tmp_path, monkeypatch):
    from rnnvision.weights import make

    run = tmp_path / "run"
    save_recipe_model("digits_row_lstm.yaml", ["model.hidden_size=48", "model.head_hidden=8"], run / "best.pt")
    state = load_checkpoint(run / "best.pt")["state_dict"]
    int8_bytes, float16_bytes = len(to_bytes(state, "int8")), len(to_bytes(state, "float16"))
    assert int8_bytes < 0.7 * float16_bytes  # the LSTM matrices in one byte instead of two
    monkeypatch.setattr(make, "MAX_FILE_BYTES", (int8_bytes + float16_bytes) // 2)
    made = make_weights(CONFIGS / "digits_row_lstm.yaml", run, folder=tmp_path / "shipped")
    assert made.entry.dtype == "int8" and made.entry.bytes == int8_bytes and "more than" in made.refused["float16"]
    monkeypatch.setattr(catalogue, "FOLDER", tmp_path / "shipped")
    assert abs(made.entry.value - made.entry.float32_test_metrics["accuracy"]) <= 0.001
    model, _ = rnnvision.load(made.entry.name)  # the int8 rows times their scales, in float32
    expected = widen(narrow(state, "int8"))
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    assert not torch.equal(expected["rnn.weight_hh_l0"], state["rnn.weight_hh_l0"])


def test_make_weights_refuses_a_run_of_another_recipe(tmp_path):
    run = tmp_path / "run"
    save_recipe_model("digits_row_lstm.yaml", ["model.hidden_size=8", "model.head_hidden=8"], run / "best.pt")
    with pytest.raises(UserError, match="not what .*mnist_row_bilstm.yaml trains"):
        make_weights(CONFIGS / "mnist_row_bilstm.yaml", run, folder=tmp_path / "shipped")


def test_make_weights_records_where_the_run_started_the_same_on_every_machine(private_catalogue, tmp_path):
    overrides = ["model.hidden_size=8", "model.head_hidden=8"]
    run, continued = tmp_path / "run", tmp_path / "continued"
    save_recipe_model(
        "digits_row_lstm.yaml", [*overrides, "train.init_from=/home/me/runs/x_stage2/best.pt"], run / "best.pt"
    )
    made = make_weights(CONFIGS / "digits_row_lstm.yaml", run, folder=tmp_path / "other")
    assert made.entry.config["train"]["init_from"] == "x_stage2/best.pt"
    replaced = get_weights(DIGITS).sha256  # a run continued from the shipped weights it replaces
    save_recipe_model("digits_row_lstm.yaml", [*overrides, f"train.init_from={DIGITS}"], continued / "best.pt")
    made = make_weights(CONFIGS / "digits_row_lstm.yaml", continued, folder=private_catalogue)
    assert made.entry.config["train"]["init_from"] == f"{DIGITS} (sha256 {replaced[:12]}...)"
