"""Segmentation through the command line: train, eval --json, predict --out; CamVid's missing splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rnnvision.cli import main
from rnnvision.data import build_dataset
from tests.cli.test_cli import CONFIGS, run_cli
from tests.conftest import SHARED_DATA, shared_dataset
from tests.faults import assert_fault

TINY = [
    "model.hidden_sizes=[8, 8]",
    "model.decoder_chans=8",
    "data.train_images=64",
    "data.val_images=16",
    "data.test_images=24",
    "train.epochs=2",
    "train.batch_size=16",
    "train.lr=0.01",
]


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    """A tiny reseg trained on digit-scenes through the CLI, and a test canvas saved as a PNG."""
    root = tmp_path_factory.mktemp("seg")
    args = ["train", str(CONFIGS / "digit_scenes_reseg.yaml"), "--out", str(root / "run"), "--quiet"]
    for item in TINY:
        args += ["--set", item]
    assert main(args) == 0
    scene = build_dataset("digit-scenes", split="test", test_images=1).images[0, 0].numpy()
    Image.fromarray(scene).save(root / "scene.png")
    Image.fromarray(scene).resize((60, 36)).save(root / "wide.png")
    return root


def test_train_writes_the_confusion_matrix_and_sample_segmentations(segmenter):
    names = {p.name for p in (segmenter / "run").iterdir()}
    assert {"best.pt", "confusion.png", "segmentations.png", "results.json"} <= names
    results = json.loads((segmenter / "run" / "results.json").read_text())
    # digit-scenes' class 0 is background, so the foreground IoU is reported too
    assert set(results["test"]) == {"pixel_accuracy", "mean_iou", "per_class_iou", "foreground_iou", "n"}
    assert {"class_iou.png"} <= names


def test_eval_json_gives_pixel_accuracy_and_iou(segmenter, capsys):
    assert main(["eval", str(segmenter / "run" / "best.pt"), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out)
    assert out.count("\n") == 1 and set(metrics) == {
        "pixel_accuracy",
        "mean_iou",
        "per_class_iou",
        "foreground_iou",
        "n",
    }
    assert metrics["n"] == 24 and len(metrics["per_class_iou"]) == 11 and 0 < metrics["pixel_accuracy"] <= 1
    defined = [v for v in metrics["per_class_iou"] if v is not None]
    assert metrics["mean_iou"] == pytest.approx(sum(defined) / len(defined))


def test_eval_mirror_refuses_a_model_trained_without_flips(segmenter, capsys):
    assert main(["eval", str(segmenter / "run" / "best.pt"), "--json", "--mirror"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "trained without them (data.hflip off" in captured.err


def test_eval_mirror_averages_a_flip_trained_model_over_the_same_images(capsys):
    shared_dataset("weizmann-horse")  # the shipped horse_reseg was trained with flips, on these horses
    common = ["eval", "--weights", "horse_reseg", "--data-dir", str(SHARED_DATA), "--json"]
    assert main(common) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*common, "--mirror"]) == 0
    mirrored = json.loads(capsys.readouterr().out)
    assert mirrored["n"] == plain["n"] == 100
    assert mirrored["foreground_iou"] != plain["foreground_iou"]  # the mirror pass changes the masks,
    assert mirrored["foreground_iou"] > plain["foreground_iou"] - 0.02  # and a horse mirrored is still a horse


def test_predict_writes_a_palette_mask_and_an_overlay_at_the_image_size(segmenter, capsys):
    out_dir = segmenter / "predicted"
    files = [str(segmenter / "scene.png"), str(segmenter / "wide.png")]
    assert main(["predict", str(segmenter / "run" / "best.pt"), *files, "--out", str(out_dir), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["predictions"]
    assert [r["file"] for r in results] == files
    for result, size in zip(results, [(48, 48), (36, 60)]):
        mask = Image.open(result["mask"])
        assert mask.mode == "P" and mask.size == size[::-1] and np.asarray(mask).max() <= 10
        overlay = Image.open(result["overlay"])
        assert overlay.mode == "RGB" and overlay.size == size[::-1]
        assert Image.open(result["legend"]).size[0] > 300  # colour mask and overlay with a key of the classes
        assert sum(result["classes"].values()) == pytest.approx(1.0, abs=1e-5) and result["size"] == list(size)
    assert Path(results[0]["mask"]).name == "scene_mask.png"
    assert main(["predict", str(segmenter / "run" / "best.pt"), files[0]]) == 0
    assert capsys.readouterr().out.startswith(files[0] + ": ")


def test_predict_batches_images_of_one_size_and_gives_the_results_of_one_at_a_time(segmenter, capsys, tmp_path):
    scenes = build_dataset("digit-scenes", split="test", test_images=3).images[:, 0].numpy()
    (tmp_path / "in").mkdir()
    for i, scene in enumerate(scenes):
        Image.fromarray(scene).save(tmp_path / "in" / f"scene{i}.png")
        Image.fromarray(scene).resize((60, 36)).save(tmp_path / "in" / f"wide{i}.png")
    runs = []
    for size in ("1", "6"):
        table = tmp_path / f"batch{size}.jsonl"
        assert (
            main(
                [
                    "predict",
                    str(segmenter / "run" / "best.pt"),
                    str(tmp_path / "in"),
                    "--batch-size",
                    size,
                    "--out",
                    str(table),
                    "--out",
                    str(tmp_path / f"masks{size}"),
                ]
            )
            == 0
        )
        runs.append([json.loads(line) for line in table.read_text().splitlines()])
    assert len(runs[0]) == len(runs[1]) == 6 and [r["size"] for r in runs[0]] == [[48, 48]] * 3 + [[36, 60]] * 3
    for alone, together in zip(*runs):
        assert alone["classes"] == together["classes"] and alone["file"] == together["file"]
        assert np.array_equal(np.asarray(Image.open(alone["mask"])), np.asarray(Image.open(together["mask"])))


def test_eval_out_writes_the_confusion_and_iou_pictures_into_a_new_folder(segmenter, capsys):
    out_dir = segmenter / "eval" / "pictures"
    assert main(["eval", str(segmenter / "run" / "best.pt"), "--json", "--out", str(out_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 24
    assert {p.name for p in out_dir.iterdir()} == {"confusion.png", "class_iou.png", "segmentations.png"}


def test_median_frequency_weights_are_computed_from_train_and_kept_in_the_checkpoint(tmp_path):
    from rnnvision.engine.checkpoint import load_checkpoint
    from rnnvision.tasks.segment import SegmentationTask

    args = ["train", str(CONFIGS / "digit_scenes_reseg.yaml"), "--out", str(tmp_path / "run"), "--quiet"]
    for item in [*TINY, "train.epochs=1", "train.class_weights=median_frequency"]:
        args += ["--set", item]
    assert main(args) == 0
    meta = load_checkpoint(tmp_path / "run" / "best.pt")["meta"]
    train = build_dataset("digit-scenes", split="train", train_images=64, val_images=16, test_images=24)
    expected = SegmentationTask.class_weights_from(train, method="median_frequency")
    assert meta["class_weights"] == pytest.approx(expected) and len(expected) == 11
    assert expected[0] < 0.5 < max(expected)  # background, the common class, weighs least
    done = run_cli("train", str(CONFIGS / "digit_scenes_reseg.yaml"), "--set", "train.class_weights=inverse")
    assert done.returncode == 2 and "train.class_weights must be" in done.stderr


def test_camvid_recipe_stops_with_one_line_naming_the_missing_splits(tmp_path):
    done = run_cli(
        "train", str(CONFIGS / "camvid_reseg.yaml"), "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "camvid: the train split is missing" in done.stderr and "present: none" in done.stderr
    if (SHARED_DATA / "camvid" / "test").is_dir() and not (SHARED_DATA / "camvid" / "train").is_dir():
        done = run_cli(
            "train", str(CONFIGS / "camvid_reseg.yaml"), "--data-dir", str(SHARED_DATA), "--out", str(tmp_path / "s")
        )
        assert done.returncode == 2 and "present: test; missing: train, val" in done.stderr


def test_segmentation_predict_refuses_explain(segmenter):
    done = run_cli("predict", str(segmenter / "run" / "best.pt"), str(segmenter / "scene.png"), "--explain", "x.png")
    assert done.returncode == 2 and "no --explain" in done.stderr


def test_predict_out_faults_exit_2_in_one_line_and_change_nothing(segmenter, tmp_path, capsys):
    args = ["predict", str(segmenter / "run" / "best.pt"), str(segmenter / "scene.png"), "--out"]
    (tmp_path / "file.txt").write_text("the user's")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"the user's")
    roots = [tmp_path, segmenter]
    assert_fault(args + [str(tmp_path / "file.txt")], "is a file, not a folder", capsys, roots=roots)
    assert_fault(args + [str(tmp_path / "mine")], "holds files that rnnvision did not write", capsys, roots=roots)
    assert_fault(args + [str(segmenter / "run")], "holds an rnnvision train run", capsys, roots=roots)
    twice = [str(segmenter / "scene.png"), str(tmp_path / "scene.png")]
    (tmp_path / "scene.png").write_bytes((segmenter / "scene.png").read_bytes())
    assert_fault(args[:2] + twice + ["--out", str(tmp_path / "new")], "two images are named scene", capsys, roots=roots)


def test_predict_out_reuses_its_own_folder_and_keeps_other_files(segmenter, tmp_path, capsys):
    args = [
        "predict",
        str(segmenter / "run" / "best.pt"),
        str(segmenter / "scene.png"),
        "--out",
        str(tmp_path / "masks"),
    ]
    assert main(args) == 0
    (tmp_path / "masks" / "notes.txt").write_text("mine")
    assert main(args) == 0
    assert {p.name for p in (tmp_path / "masks").iterdir()} == {
        ".rnnvision-run.json",
        "notes.txt",
        "scene_mask.png",
        "scene_overlay.png",
        "scene_legend.png",
    }
