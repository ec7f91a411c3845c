"""Where train and demo write: a table of output-folder faults, each exit 2 with one line and nothing changed."""

from __future__ import annotations

import contextlib
import json
import os

import pytest
import yaml

from rnnvision.cli import main
from rnnvision.engine import load_checkpoint
from rnnvision.files import TEMP_NAME
from rnnvision.outputs import LOCK, MARKER, RunLock
from tests.faults import assert_fault, cheap_pictures, fill_disk_at_last_pt, snapshot

RECIPE = {
    "model": {"name": "row_lstm", "hidden_size": 8, "head_hidden": 8},
    "data": {"name": "digits"},
    "train": {"epochs": 1, "batch_size": 128, "lr": 0.02, "device": "cpu"},
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A recipe file and a finished one-epoch run of it, made through the CLI."""
    root = tmp_path_factory.mktemp("made")
    (root / "tiny.yaml").write_text(yaml.safe_dump(RECIPE))
    with pytest.MonkeyPatch.context() as patch:
        cheap_pictures(patch)
        assert main(["train", str(root / "tiny.yaml"), "--out", str(root / "run"), "--quiet"]) == 0
    return root


def _mine(folder):
    folder.mkdir()
    (folder / "thesis.tex").write_text("months of work")
    return folder


def _marked(folder, **marker):
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps(marker))
    return folder


# each case: (name, arguments after the command with {recipe}, {run}, {tmp} filled in, setup, message)
CASES = [
    (
        "train --out FILE",
        ["train", "{recipe}", "--out", "{tmp}/out.txt"],
        lambda tmp: (tmp / "out.txt").write_text("a file"),
        "is a file, not a folder",
    ),
    (
        "train --out DIR/sub under a file",
        ["train", "{recipe}", "--out", "{tmp}/out.txt/run"],
        lambda tmp: (tmp / "out.txt").write_text("a file"),
        "is a file, not a folder",
    ),
    (
        "train --out a folder of the user's",
        ["train", "{recipe}", "--out", "{tmp}/mine"],
        lambda tmp: _mine(tmp / "mine"),
        "holds files that rnnvision did not write",
    ),
    (
        "train --out . in a folder of the user's",
        ["train", "{recipe}", "--out", "."],
        lambda tmp: os.chdir(_mine(tmp / "mine")),
        "holds files that rnnvision did not write",
    ),
    ("train --out a finished run", ["train", "{recipe}", "--out", "{run}"], None, "already holds a run"),
    (
        "train --out a demo folder",
        ["train", "{recipe}", "--out", "{tmp}/demo"],
        lambda tmp: _marked(tmp / "demo", run_id="d", kind="demo"),
        "already holds a run",
    ),
    (
        "train --out a folder with a damaged marker",
        ["train", "{recipe}", "--out", "{tmp}/odd"],
        lambda tmp: (tmp / "odd").mkdir() or (tmp / "odd" / MARKER).write_text("{not json"),
        "is damaged",
    ),
    (
        "train --out a folder another run is writing",
        ["train", "{recipe}", "--out", "{tmp}/busy"],
        "lock",
        "being written by another rnnvision run",
    ),
    (
        "train --resume with another lr",
        ["train", "{recipe}", "--resume", "{run}/last.pt", "--set", "train.lr=0.5"],
        None,
        "trained with other settings: train.lr (0.02 -> 0.5)",
    ),
    (
        "train --resume with more epochs",
        ["train", "{recipe}", "--resume", "{run}/last.pt", "--set", "train.epochs=3"],
        None,
        "train.epochs (1 -> 3)",
    ),
    (
        "train --resume with another batch size",
        ["train", "{recipe}", "--resume", "{run}/last.pt", "--set", "train.batch_size=64"],
        None,
        "train.batch_size (128 -> 64)",
    ),
    (
        "train --resume with another model size",
        ["train", "{recipe}", "--resume", "{run}/last.pt", "--set", "model.hidden_size=16"],
        None,
        "model.hidden_size (8 -> 16)",
    ),
    (
        "train --resume --out another run",
        ["train", "{recipe}", "--resume", "{run}/last.pt", "--out", "{tmp}/other"],
        lambda tmp: _marked(tmp / "other", run_id="someone-else", kind="train"),
        "holds another run than",
    ),
    (
        "train --resume --out a folder of the user's",
        ["train", "{recipe}", "--resume", "{run}/last.pt", "--out", "{tmp}/mine"],
        lambda tmp: _mine(tmp / "mine"),
        "holds files that rnnvision did not write",
    ),
    (
        "demo --out FILE",
        ["demo", "--out", "{tmp}/out.txt"],
        lambda tmp: (tmp / "out.txt").write_text("a file"),
        "is a file, not a folder",
    ),
    (
        "demo --out a folder of the user's",
        ["demo", "--out", "{tmp}/mine"],
        lambda tmp: _mine(tmp / "mine"),
        "holds files that rnnvision did not write",
    ),
    (
        "demo --out . in a folder of the user's",
        ["demo", "--out", "."],
        lambda tmp: os.chdir(_mine(tmp / "mine")),
        "holds files that rnnvision did not write",
    ),
    ("demo --out a training run", ["demo", "--out", "{run}"], None, "holds an rnnvision train run"),
]


@pytest.mark.parametrize("args,setup,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_output_folder_faults_exit_2_in_one_line_and_change_nothing(
    made, tmp_path, monkeypatch, capsys, args, setup, message
):
    monkeypatch.chdir(tmp_path)
    with contextlib.ExitStack() as stack:
        if setup == "lock":
            (tmp_path / "busy").mkdir()
            stack.enter_context(RunLock(tmp_path / "busy"))
        elif setup is not None:
            setup(tmp_path)
        values = {"recipe": str(made / "tiny.yaml"), "run": str(made / "run"), "tmp": str(tmp_path)}
        assert_fault([a.format(**values) for a in args], message, capsys, roots=[tmp_path, made])


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_out_is_refused(made, tmp_path, capsys):
    (tmp_path / "locked").mkdir(mode=0o555)
    assert_fault(
        ["train", str(made / "tiny.yaml"), "--out", str(tmp_path / "locked" / "run")],
        "is not writable",
        capsys,
        roots=[tmp_path],
    )


def test_a_full_disk_exits_2_in_one_line_and_keeps_the_checkpoints(made, tmp_path, monkeypatch, capsys):
    cheap_pictures(monkeypatch)
    run = tmp_path / "run"
    (tmp_path / "notes.txt").write_text("the user's")
    kept = fill_disk_at_last_pt(monkeypatch, run, epoch=2)
    args = ["train", str(made / "tiny.yaml"), "--out", str(run), "--quiet", "--set", "train.epochs=2"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last.pt: no space left on the device (disk full)" in err and "Traceback" not in err
    assert (run / "last.pt").read_bytes() == kept["last.pt"] and (run / "best.pt").read_bytes() == kept["best.pt"]
    assert load_checkpoint(run / "last.pt")["training"]["epoch"] == 1
    assert not any(TEMP_NAME.fullmatch(p.name) for p in run.iterdir()) and not (run / LOCK).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run"]
    assert (tmp_path / "notes.txt").read_text() == "the user's"


def test_resume_writes_into_the_checkpoints_own_folder_by_default(made, tmp_path, monkeypatch, capsys):
    cheap_pictures(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(made / "tiny.yaml"), "--out", "run", "--quiet"]) == 0
    before = snapshot(tmp_path / "run")
    assert main(["train", str(made / "tiny.yaml"), "--resume", "run/last.pt", "--quiet"]) == 0
    assert "run directory: run " in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and set(snapshot(tmp_path / "run")) == set(before)


def test_demo_reuses_its_own_folder_and_keeps_what_the_user_put_there(tmp_path, monkeypatch, capsys):
    """A second demo replaces the first demo's files and nothing else (the demo is shortened to one epoch here)."""
    from rnnvision import demo

    cheap_pictures(monkeypatch)
    monkeypatch.setitem(demo.DEMO_RECIPE, "train", {**demo.DEMO_RECIPE["train"], "epochs": 1})
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    first = load_checkpoint(out / "last.pt")["run_id"]
    (out / "notes.txt").write_text("mine")
    (out / ".rnnvision-staging").mkdir()  # as a killed demo leaves it
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and load_checkpoint(out / "last.pt")["run_id"] != first
    assert not (out / ".rnnvision-staging").exists() and not (out / LOCK).exists()
    assert json.loads((out / MARKER).read_text())["run_id"] == load_checkpoint(out / "last.pt")["run_id"]
