"""Run directories survive kills, full disks and second runs: exact resume from every crash window.

A kill is injected at the k-th atomic rename (``rnnvision.files._commit``) of a tiny run, for
every k, leaving behind what a real kill leaves (a temporary file, a lock file of a dead process);
``--resume`` (or a fresh start when no ``last.pt`` was written yet) must then end with the same
weights, checkpoints and metrics as the run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

import rnnvision.files as files
from rnnvision.config import config_from_dict
from rnnvision.engine import load_checkpoint, train
from rnnvision.errors import UserError
from rnnvision.outputs import LOCK, MARKER, RunLock, read_marker
from tests.faults import cheap_pictures, fill_disk_at_last_pt

TINY = {
    "model": {"name": "row_lstm", "hidden_size": 8, "head_hidden": 8, "dropout": 0.1},
    "data": {"name": "digits", "max_shift": 1},
    "train": {"epochs": 2, "batch_size": 256, "lr": 0.03, "warmup_epochs": 0.5, "device": "cpu", "seed": 5},
}
TIMING = ("epoch_seconds", "train_seconds")
REAL_COMMIT = files._commit


def tiny_config(**train):
    raw = {k: dict(v) for k, v in TINY.items()}
    raw["train"].update(train)
    return config_from_dict(raw)


@pytest.fixture
def cheap(monkeypatch):
    cheap_pictures(monkeypatch)


class Killed(BaseException):
    """A simulated SIGKILL: no ``except Exception`` catches it."""


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def kill_at_commit(monkeypatch, k: int) -> None:
    """Make the k-th atomic rename die before it happens, leaving its temporary file as a kill would."""
    calls = {"n": 0}

    def commit(tmp, target):
        calls["n"] += 1
        if calls["n"] == k:
            shutil.copyfile(tmp, target.parent / f".{target.name}.killed00.tmp")
            raise Killed
        REAL_COMMIT(tmp, target)

    monkeypatch.setattr(files, "_commit", commit)


def count_commits(monkeypatch, config, out) -> int:
    calls = []
    monkeypatch.setattr(files, "_commit", lambda tmp, target: (calls.append(target.name), REAL_COMMIT(tmp, target)))
    train(config, out_dir=out, quiet=True)
    monkeypatch.setattr(files, "_commit", REAL_COMMIT)
    return len(calls)


def outcome(run):
    """What a finished run leaves, minus wall-clock times."""
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    results = json.loads((run / "results.json").read_text())
    return {
        "last": last["state_dict"],
        "best": best["state_dict"],
        "best_metrics": best["metrics"],
        "step": last["training"]["step"],
        "rows": [{k: v for k, v in r.items() if k not in TIMING} for r in rows],
        "results": {k: v for k, v in results.items() if k not in TIMING},
        "names": sorted(p.name for p in run.iterdir()),
        "run_id": last["run_id"],
    }


@pytest.mark.slow
def test_a_kill_at_any_file_operation_then_resume_gives_the_uninterrupted_run(tmp_path, monkeypatch, cheap):
    config = tiny_config()
    total = count_commits(monkeypatch, config, tmp_path / "straight")
    straight = outcome(tmp_path / "straight")
    accuracies = [row["val_accuracy"] for row in straight["rows"]]
    improved = sum(a > max(accuracies[:i], default=-1) for i, a in enumerate(accuracies))
    assert (
        total == 2 + 2 * 3 + improved + 3
    )  # marker, config; per epoch last.pt, metrics, curves (best.pt when better); end
    for k in range(1, total + 1):
        run = tmp_path / f"killed{k}"
        kill_at_commit(monkeypatch, k)
        with pytest.raises(Killed):
            train(tiny_config(), out_dir=run, quiet=True)
        monkeypatch.setattr(files, "_commit", REAL_COMMIT)
        (run / LOCK).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))  # the kill left it
        resume = run / "last.pt" if (run / "last.pt").exists() else None
        train(tiny_config(), out_dir=run, resume=resume, quiet=True)
        got = outcome(run)
        assert got["names"] == straight["names"], k  # no temporary file or lock left, nothing missing
        for key in ("last", "best"):
            assert all(torch.equal(got[key][name], straight[key][name]) for name in straight[key]), (k, key)
        for key in ("best_metrics", "step", "rows", "results"):
            assert got[key] == straight[key], (k, key)
        assert read_marker(run)["run_id"] == got["run_id"], k


def test_a_full_disk_keeps_the_previous_checkpoints_and_says_so(tmp_path, monkeypatch, cheap):
    run = tmp_path / "run"
    kept = fill_disk_at_last_pt(monkeypatch, run, epoch=2)
    with pytest.raises(UserError, match=r"cannot write .*last.pt: no space left on the device \(disk full\)") as caught:
        train(tiny_config(), out_dir=run, quiet=True)
    assert "\n" not in str(caught.value)
    assert kept and all((run / name).read_bytes() == data for name, data in kept.items())
    assert load_checkpoint(run / "last.pt")["training"]["epoch"] == 1
    assert not any(files.TEMP_NAME.fullmatch(p.name) for p in run.iterdir()) and not (run / LOCK).exists()


def test_a_second_run_into_a_locked_folder_is_refused_and_a_dead_lock_taken_over(tmp_path, cheap):
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):
        with pytest.raises(UserError, match=f"being written by another rnnvision run \\(process {os.getpid()} on"):
            train(tiny_config(epochs=1), out_dir=run, quiet=True)
        assert not (run / MARKER).exists()
    (run / LOCK).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname()}))
    train(tiny_config(epochs=1), out_dir=run, quiet=True)
    assert (run / "last.pt").exists() and not (run / LOCK).exists()


def test_only_our_stale_temporary_files_are_removed(tmp_path, cheap):
    run = tmp_path / "run"
    train(tiny_config(epochs=1), out_dir=run, quiet=True)
    ours = [run / ".last.pt.abc_1234.tmp", run / ".metrics.jsonl.zzzzzzzz.tmp"]
    theirs = [run / "notes.tmp", run / ".last.pt.tmp", run / ".x.abcdefgh.tmp.bak", run / ".y.ABCDEFGH.tmp"]
    for path in ours + theirs:
        path.write_text("left over")
    train(tiny_config(epochs=1), out_dir=run, resume=run / "last.pt", quiet=True)
    assert not any(p.exists() for p in ours) and all(p.read_text() == "left over" for p in theirs)


def test_resume_refuses_changed_settings_naming_them_and_records_what_was_used(tmp_path, cheap):
    run = tmp_path / "run"
    train(tiny_config(epochs=1), out_dir=run, quiet=True)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(UserError, match=r"train\.epochs \(1 -> 2\), train\.lr \(0\.03 -> 0\.01\)"):
        train(tiny_config(epochs=2, lr=0.01), out_dir=run, resume=run / "last.pt", quiet=True)
    bigger = tiny_config(epochs=1)
    bigger.model["hidden_size"] = 16
    with pytest.raises(UserError, match=r"model\.hidden_size \(8 -> 16\)"):
        train(bigger, out_dir=run, resume=run / "last.pt", quiet=True)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # init_from is not used by a resumed run: config.yaml keeps the value that started the weights
    train(tiny_config(epochs=1, init_from=str(run / "best.pt")), out_dir=run, resume=run / "last.pt", quiet=True)
    assert "init_from: ''" in (run / "config.yaml").read_text()


def test_resume_into_another_runs_folder_is_refused_and_into_a_new_one_continues_the_run(tmp_path, cheap):
    a, b = tmp_path / "a", tmp_path / "b"
    train(tiny_config(epochs=1), out_dir=a, quiet=True)
    train(tiny_config(epochs=1, seed=6), out_dir=b, quiet=True)
    before = {p.name: p.read_bytes() for p in b.iterdir()}
    with pytest.raises(UserError, match="holds another run than"):
        train(tiny_config(epochs=1), out_dir=b, resume=a / "last.pt", quiet=True)
    assert {p.name: p.read_bytes() for p in b.iterdir()} == before
    train(tiny_config(epochs=1), out_dir=tmp_path / "copy", resume=a / "last.pt", quiet=True)
    assert read_marker(tmp_path / "copy")["run_id"] == read_marker(a)["run_id"]
    assert (tmp_path / "copy" / "metrics.jsonl").read_text() == (a / "metrics.jsonl").read_text()
