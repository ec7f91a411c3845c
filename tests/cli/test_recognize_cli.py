"""Recognition through the command line: train a recipe, eval --json, predict with text and confidence."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from rnnvision.cli import main
from tests.cli.recognizer import train_tiny_recognizer
from tests.faults import assert_fault


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_recognizer(tmp_path_factory.mktemp("recognize-cli"))


def test_eval_json_has_the_recognition_metrics(trained, capsys):
    checkpoint, _ = trained
    assert main(["eval", str(checkpoint), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out)
    assert out.count("\n") == 1 and {"word_accuracy", "cer", "wer", "n"} <= set(metrics) and metrics["n"] == 24


def test_predict_prints_text_and_confidence_and_explains(trained, capsys, tmp_path):
    checkpoint, files = trained
    assert main(["predict", str(checkpoint), *files, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["predictions"]
    assert [r["file"] for r in results] == files
    assert all(set(r["text"]) <= set("0123456789") and 0 <= r["confidence"] <= 1 for r in results)
    picture = tmp_path / "explain.png"
    assert main(["predict", str(checkpoint), files[0], "--explain", str(picture), "--beam-width", "4"]) == 0
    line = capsys.readouterr().out
    assert line.startswith(files[0] + ": ") and line.rstrip().endswith(")")
    assert Image.open(picture).size[0] > 100


def test_predict_json_gives_each_character_a_box_in_the_image_and_a_probability(trained, capsys):
    checkpoint, files = trained
    assert main(["predict", str(checkpoint), *files, "--json", "--batch-size", "2"]) == 0
    results = json.loads(capsys.readouterr().out)["predictions"]
    assert main(["predict", str(checkpoint), *files, "--json", "--batch-size", "1"]) == 0
    for alone, batched in zip(json.loads(capsys.readouterr().out)["predictions"], results, strict=True):
        # padded batches read as single images (probabilities up to float rounding in the 6th decimal)
        assert alone["text"] == batched["text"] and alone["confidence"] == pytest.approx(
            batched["confidence"], abs=2e-6
        )
        assert [(c["x0"], c["x1"]) for c in alone["characters"]] == [(c["x0"], c["x1"]) for c in batched["characters"]]
    for result in results:
        width = Image.open(result["file"]).width
        boxes = result["characters"]
        assert "".join(c["char"] for c in boxes) == result["text"]
        assert all(0 <= c["x0"] < c["x1"] <= width and 0 < c["probability"] <= 1 for c in boxes)
        assert all(a["x1"] == b["x0"] for a, b in zip(boxes, boxes[1:]))  # neighbours share the blanks between them


def test_predict_with_a_lexicon_answers_one_of_its_words(trained, capsys, tmp_path):
    checkpoint, files = trained
    (tmp_path / "lexicon.txt").write_text("12\n345\n6\n")
    assert main(["predict", str(checkpoint), *files, "--lexicon", str(tmp_path / "lexicon.txt"), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["predictions"]
    assert all(r["text"] in {"12", "345", "6"} for r in results)


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--out", "somewhere"], "writes no per-image files"),
        (["--beam-width", "-2"], "beam width must be"),
        (["--lexicon", "missing.txt"], "lexicon file not found"),
    ],
)
def test_predict_mistakes_exit_2_with_one_line(trained, capsys, extra, message):
    checkpoint, files = trained
    assert main(["predict", str(checkpoint), files[0], *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_predict_explain_faults_exit_2_in_one_line_and_change_nothing(trained, tmp_path, capsys):
    checkpoint, files = trained
    (tmp_path / "pictures").mkdir()
    (tmp_path / "file.txt").write_text("the user's")
    roots = [tmp_path, checkpoint.parent]
    args = ["predict", str(checkpoint), files[0], "--explain"]
    assert_fault(args + [str(tmp_path / "pictures")], "is a folder; give a file name", capsys, roots=roots)
    assert_fault(args + [str(tmp_path / "file.txt" / "x.png")], "is a file, not a folder", capsys, roots=roots)
    assert_fault(
        args + [str(tmp_path / "explain.xyz")], "no figure format is known for the suffix .xyz", capsys, roots=roots
    )
