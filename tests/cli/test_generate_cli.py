"""rnnvision generate / complete / eval / predict on a generative checkpoint; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from rnnvision.cli import main
from rnnvision.data import build_dataset
from tests.faults import assert_fault

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny PixelRNN trained on the binarized digits through the CLI, and a digit saved as a PNG."""
    root = tmp_path_factory.mktemp("gen")
    tiny = ["model.hidden=8", "model.layers=1", "model.out_hidden=16", "train.epochs=1"]
    args = ["train", str(CONFIGS / "digits_pixelrnn_row.yaml"), "--out", str(root / "run"), "--quiet"]
    assert main(args + [item for s in tiny for item in ("--set", s)]) == 0
    digit = build_dataset("binarized-digits", split="test")[0]
    image = root / "digit.png"
    Image.fromarray((digit[0].numpy() * 255).astype("uint8")).save(image)
    return root / "run" / "best.pt", image


def test_generate_writes_a_reproducible_grid(checkpoint, tmp_path, capsys):
    ckpt, _ = checkpoint
    paths = [tmp_path / f"{name}.png" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (0, 0, 1)):
        assert main(["generate", str(ckpt), "--n", "6", "--out", str(path), "--seed", str(seed)]) == 0
    assert "wrote 6 samples" in capsys.readouterr().out
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()
    scale = 7  # about 56 pixels per side for 8x8 images
    assert Image.open(paths[0]).size == (6 * (8 * scale + 1) + 1, 8 * scale + 2)


def test_complete_writes_occluded_completions_original(checkpoint, tmp_path):
    ckpt, image = checkpoint
    out = tmp_path / "completed.png"
    assert (
        main(["complete", str(ckpt), str(image), str(image), "--out", str(out), "--samples", "2", "--method", "naive"])
        == 0
    )
    width, height = Image.open(out).size
    assert (width, height) == (4 * 57 + 1, 2 * 57 + 1)  # 2 images x (occluded, 2 completions, original)


def test_eval_json_and_predict_report_the_nll(checkpoint, capsys):
    ckpt, image = checkpoint
    assert main(["eval", str(ckpt), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"nll_nats", "bits_per_dim", "n"} and metrics["n"] == 360 and metrics["nll_nats"] > 0
    assert main(["predict", str(ckpt), str(image), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["predictions"]
    assert result["nll_nats"] > 0 and result["file"] == str(image)


@pytest.mark.parametrize(
    "args,message",
    [
        (["generate", "missing.pt"], "checkpoint not found"),
        (["generate", "CKPT", "--n", "0"], "at least 1"),
        (["complete", "CKPT", "IMAGE", "--known-rows", "8"], "known rows must lie in"),
        (["complete", "CKPT", "nothing.png"], "image file not found"),
        (["generate", "CKPT", "--out", "OUT", "--size", "0", "3"], "size must be positive"),
    ],
)
def test_bad_input_exits_2_with_one_line(checkpoint, tmp_path, capsys, args, message):
    ckpt, image = checkpoint
    names = {"CKPT": str(ckpt), "IMAGE": str(image), "OUT": str(tmp_path / "out.png")}
    assert main([names.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "out,setup,message",
    [
        ("DIR", "dir", "is a folder; give a file name"),
        ("FILE/samples.png", "file", "is a file, not a folder"),
        ("samples.xyz", None, "no image format is known for the suffix .xyz"),
        ("samples", None, "no image format is known for the suffix (none)"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "complete"])
def test_a_bad_out_exits_2_in_one_line_and_writes_nothing(checkpoint, tmp_path, capsys, command, out, setup, message):
    ckpt, image = checkpoint
    if setup == "dir":
        (tmp_path / "DIR").mkdir()
        (tmp_path / "DIR" / "mine.png").write_bytes(b"the user's")
    elif setup == "file":
        (tmp_path / "FILE").write_text("the user's")
    args = [command, str(ckpt), *([str(image)] if command == "complete" else []), "--out", str(tmp_path / out)]
    assert_fault(args, message, capsys, roots=[tmp_path, ckpt.parent])


def test_generate_writes_the_format_its_suffix_names(checkpoint, tmp_path):
    ckpt, _ = checkpoint
    for suffix, fmt in ((".jpg", "JPEG"), (".webp", "WEBP"), (".png", "PNG")):
        assert main(["generate", str(ckpt), "--n", "2", "--out", str(tmp_path / f"s{suffix}")]) == 0
        assert Image.open(tmp_path / f"s{suffix}").format == fmt
