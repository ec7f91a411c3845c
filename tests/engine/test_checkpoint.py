"""Checkpoints are written atomically and refuse truncated, foreign, tampered or malicious files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from rnnvision.engine.checkpoint import load_checkpoint, save_checkpoint
from rnnvision.errors import UserError


def _payload():
    return {
        "model_name": "x",
        "task": "classify",
        "meta": {"class_names": ["a", "b"]},
        "state_dict": {"w": torch.arange(6.0).reshape(2, 3)},
        "config": {"model": {"name": "x"}},
        "metrics": {"a": 1},
    }


def test_round_trip_keeps_everything(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _payload())
    body = load_checkpoint(path)
    assert torch.equal(body["state_dict"]["w"], _payload()["state_dict"]["w"])
    assert body["config"] == {"model": {"name": "x"}} and body["format"] == "rnnvision.checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_files_are_refused(tmp_path):
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an rnnvision checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_tampered_weights_are_detected(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", _payload())
    raw = torch.load(path, weights_only=True)
    raw["body"]["state_dict"]["w"][0, 0] = 100.0
    torch.save(raw, path)
    with pytest.raises(UserError, match="modified after it was written"):
        load_checkpoint(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = str(tmp_path / "pwned")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"body": _Exploit(marker), "sha256": "0"}, f)
    torch.save({"body": {"x": _Exploit(marker)}, "sha256": "0"}, tmp_path / "evil_zip.pt")
    for name in ("evil.pt", "evil_zip.pt"):
        with pytest.raises(UserError):
            load_checkpoint(tmp_path / name)
    assert not os.path.exists(marker)


def test_a_failed_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", _payload())
    before = path.read_bytes()

    def save_half_then_fail(obj, file):  # save_checkpoint hands torch.save an open file
        file.write(before[:100])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _payload())
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["c.pt"]
