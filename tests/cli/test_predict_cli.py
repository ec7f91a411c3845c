"""`rnnvision predict` at scale: files, folders and globs, batches, failures per file (exit 2 with the
good files predicted), results tables (.jsonl, .csv), --topk; and rnnvision.predict, the same from Python."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rnnvision
from rnnvision.cli import main
from rnnvision.data import build_dataset
from rnnvision.engine.prediction import expand_inputs
from rnnvision.errors import UserError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["model.hidden_size=16", "model.head_hidden=16", "train.epochs=1", "train.batch_size=64"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A tiny digits classifier trained through the CLI, and a tree of test digits: 7 PNG files in
    ``images/`` (two in ``images/more/``), of three sizes, plus a note that is not an image."""
    root = tmp_path_factory.mktemp("predict")
    args = ["train", str(CONFIGS / "digits_row_lstm.yaml"), "--out", str(root / "run"), "--quiet"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    test = build_dataset("digits", split="test")
    (root / "images" / "more").mkdir(parents=True)
    files = []
    for i in range(7):
        folder = root / "images" / ("more" if i >= 5 else "")
        size = (8, 16, 24)[i % 3]
        image = Image.fromarray((test.images[i, 0].numpy() * 255).round().astype(np.uint8)).resize((size, size))
        image.save(folder / f"digit{i}.png")
        files.append(str(folder / f"digit{i}.png"))
    (root / "images" / "notes.txt").write_text("not an image, and not an image name: folders skip it")
    return root, root / "run" / "best.pt", files


def _predictions(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_a_folder_is_searched_recursively_for_images_in_sorted_order(digits, capsys):
    root, checkpoint, files = digits
    assert main(["predict", str(checkpoint), str(root / "images"), "--json"]) == 0
    out = _predictions(capsys)
    assert [r["file"] for r in out["predictions"]] == sorted(files[:5]) + sorted(
        files[5:]
    )  # the folder's own files first
    assert out["failures"] == []


def test_globs_are_expanded_by_us_and_each_file_is_predicted_once(digits, capsys):
    root, checkpoint, files = digits
    pattern = str(root / "images" / "**" / "digit[0-6].png")
    assert main(["predict", str(checkpoint), pattern, files[0], "--json"]) == 0  # files[0] matched twice
    assert sorted(r["file"] for r in _predictions(capsys)["predictions"]) == sorted(files)


def test_batching_gives_the_results_of_batch_size_one(digits, capsys):
    root, checkpoint, _ = digits
    runs = []
    for size in ("1", "3", "64"):
        assert (
            main(["predict", str(checkpoint), str(root / "images"), "--json", "--batch-size", size, "--topk", "3"]) == 0
        )
        runs.append(_predictions(capsys)["predictions"])
    ranks = [[(r["file"], [t["class"] for t in r["top"]]) for r in run] for run in runs]
    assert ranks[1] == ranks[0] and ranks[2] == ranks[0]
    for run in runs[1:]:
        np.testing.assert_allclose([r["probability"] for r in run], [r["probability"] for r in runs[0]], atol=2e-6)


def test_topk_is_sorted_sums_to_one_over_all_classes_and_starts_with_the_answer(digits, capsys):
    _, checkpoint, files = digits
    assert main(["predict", str(checkpoint), *files, "--json", "--topk", "10"]) == 0
    for result in _predictions(capsys)["predictions"]:
        probs = [t["probability"] for t in result["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
        assert result["top"][0] == {k: result[k] for k in ("class", "label", "probability")}
        assert sorted(t["class"] for t in result["top"]) == list(range(10))
    assert main(["predict", str(checkpoint), files[0], "--topk", "2"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(files[0] + ": ") and line.count("(") == 2  # the answer and the runner-up


@pytest.mark.parametrize("k", ["11", "0"])
def test_topk_outside_the_classes_is_one_line_exit_2(digits, capsys, k):
    _, checkpoint, files = digits
    assert main(["predict", str(checkpoint), files[0], "--topk", k]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--topk must lie in [1, 10]" in err


def test_mixed_good_and_bad_inputs_predict_the_good_ones_and_exit_2(digits, capsys, tmp_path):
    root, checkpoint, files = digits
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "empty").mkdir()
    bad = [
        str(tmp_path / "broken.png"),
        str(tmp_path / "no-such-folder"),
        str(tmp_path / "empty"),
        str(tmp_path / "*.jpg"),
    ]
    args = ["predict", str(checkpoint), files[0], bad[0], files[1], *bad[1:], "--json"]
    assert main(args) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [r["file"] for r in out["predictions"]] == files[:2]
    assert sorted(f["file"] for f in out["failures"]) == sorted(bad)
    lines = captured.err.splitlines()
    assert len(lines) == 4 and all(
        line.startswith("rnnvision: error: ") and line.endswith("(skipped)") for line in lines
    )
    for piece in (
        "is not an image PIL can read",
        "no such file or folder",
        "holds no image files",
        "matches no image file",
    ):
        assert sum(piece in line for line in lines) == 1, (piece, lines)


def test_only_bad_inputs_exit_2_with_one_line_each(digits, capsys, tmp_path):
    _, checkpoint, _ = digits
    assert main(["predict", str(checkpoint), str(tmp_path / "nothing-*.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "matches no image file" in captured.err


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_results_table_has_one_row_per_image_and_failures_too(digits, capsys, tmp_path, suffix):
    root, checkpoint, files = digits
    table = tmp_path / f"results{suffix}"
    (tmp_path / "bad.png").write_text("no")
    code = main(
        [
            "predict",
            str(checkpoint),
            str(root / "images"),
            str(tmp_path / "bad.png"),
            "--out",
            str(table),
            "--topk",
            "2",
        ]
    )
    assert code == 2
    assert capsys.readouterr().out == f"wrote {table}: 7 images predicted, 1 failed\n"
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in table.read_text().splitlines()]
    else:
        with table.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["file", "class", "label", "probability", "top", "error"]
        for row in rows:
            row["top"] = json.loads(row["top"]) if row["top"] else None
            row["class"] = int(row["class"]) if row["class"] else None
    assert len(rows) == 8 and [r["file"] for r in rows[:7]] == sorted(files[:5]) + sorted(files[5:])
    assert "not an image" in rows[7]["error"] and rows[7]["file"] == str(tmp_path / "bad.png")
    assert all(r["class"] == r["top"][0]["class"] and len(r["top"]) == 2 for r in rows[:7])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written atomically, nothing left


def test_out_table_refuses_a_folder_and_two_tables(digits, capsys, tmp_path):
    _, checkpoint, files = digits
    (tmp_path / "r.csv").mkdir()
    assert main(["predict", str(checkpoint), files[0], "--out", str(tmp_path / "r.csv")]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["predict", str(checkpoint), files[0], "--out", "a.csv", "--out", "b.jsonl"]) == 2
    assert "at most one results table" in capsys.readouterr().err


def test_expand_inputs_skips_hidden_files_and_other_suffixes(tmp_path):
    (tmp_path / ".hidden").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / ".hidden" / "a.png")
    Image.new("L", (4, 4)).save(tmp_path / "B.PNG")
    (tmp_path / "labels.tsv").write_text("x")
    assert expand_inputs([str(tmp_path)]) == ([str(tmp_path / "B.PNG")], [])


def test_python_predict_takes_pil_images_arrays_and_paths_like_the_cli(digits, capsys):
    _, checkpoint, files = digits
    assert main(["predict", str(checkpoint), *files[:3], "--json", "--topk", "3"]) == 0
    expected = _predictions(capsys)["predictions"]
    loaded = rnnvision.load(checkpoint)
    pil = Image.open(files[0])
    array = np.asarray(Image.open(files[1]))  # (H, W) uint8
    floats = np.asarray(Image.open(files[2]), dtype=np.float64)[..., None] / 255  # (H, W, 1) in [0, 1]
    got = rnnvision.predict(loaded, [pil, array, floats], names=files[:3], topk=3)
    assert got == expected
    assert rnnvision.predict(str(checkpoint), [Path(files[0])], device="cpu", topk=3)[0] == expected[0]
    assert rnnvision.predict(loaded, [pil])[0]["file"] == "image0"


@pytest.mark.parametrize(
    "images,message",
    [
        ("digit.png", "must be a list"),
        ([np.zeros((2, 3, 5))], "must be (H, W)"),
        ([np.full((4, 4), 2.0)], "in [0, 1]"),
        ([np.zeros((4, 4), np.int32)], "uint8, uint16, bool or float"),
        ([3], "a PIL image, a numpy array or a path"),
        (["missing.png"], "image file not found"),
    ],
)
def test_python_predict_refuses_what_it_cannot_read(digits, images, message):
    _, checkpoint, _ = digits
    with pytest.raises(UserError, match=re.escape(message)):
        rnnvision.predict(rnnvision.load(checkpoint), images)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(digits, capsys, monkeypatch):
    root, checkpoint, _ = digits
    assert main(["predict", str(checkpoint), str(root / "images"), "--batch-size", "2"]) == 0
    assert capsys.readouterr().err == ""  # not a terminal: no bar
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["predict", str(checkpoint), str(root / "images"), "--batch-size", "2"]) == 0
    assert "predict:" in terminal.getvalue() and "/7 " in terminal.getvalue()  # a bar over the 7 images
    assert len(capsys.readouterr().out.splitlines()) == 7  # the results stay on stdout
    terminal.seek(0)
    terminal.truncate()
    assert main(["predict", str(checkpoint), str(root / "images"), "--quiet"]) == 0
    assert terminal.getvalue() == ""
