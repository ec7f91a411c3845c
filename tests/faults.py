"""Shared check for output-path faults: exit 2, one line on stderr, no traceback, nothing changed on disk."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import torch

from rnnvision.cli import main


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: content digest, size, mode and modification time of files."""
    state = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        if path.is_file():
            state[str(path)] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                stat.st_size,
                stat.st_mode,
                stat.st_mtime_ns,
            )
        else:
            state[str(path)] = ("dir", stat.st_mode)
    return state


def assert_fault(args: list[str], message: str, capsys, *, roots: list[Path]) -> None:
    """``rnnvision ARGS`` exits 2 with one line holding ``message``, prints nothing on stdout and changes
    nothing under ``roots``."""
    capsys.readouterr()
    before = [snapshot(root) for root in roots]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert captured.err.startswith("rnnvision: error: ") and "Traceback" not in captured.err
    assert captured.out == ""
    assert [snapshot(root) for root in roots] == before


def cheap_pictures(monkeypatch) -> None:
    """Curves and classification report pictures as one small atomic text write each: the same file
    operations as the real pictures, without matplotlib's seconds (for tests about files, not pictures)."""
    import json

    from rnnvision.files import atomic_write_text
    from rnnvision.tasks.classify import ClassificationTask

    def curves(rows, path, *, metric):
        atomic_write_text(path, json.dumps([r[f"val_{metric}"] for r in rows]))
        return path

    def report(self, model, dataset, stats, out_dir, *, device):
        atomic_write_text(out_dir / "confusion.txt", str(stats["confusion"].tolist()))
        return [out_dir / "confusion.txt"]

    monkeypatch.setattr("rnnvision.viz.plots.plot_curves", curves)
    monkeypatch.setattr(ClassificationTask, "write_report", report)


def fill_disk_at_last_pt(monkeypatch, run: Path, *, epoch: int) -> dict[str, bytes]:
    """Make the write of epoch ``epoch``'s last.pt fail half-way with ENOSPC (a full disk). Returns a dict
    that then holds last.pt and best.pt as they were just before that write."""
    real_save, kept = torch.save, {}

    def save(obj, file):
        if "training" in obj["body"] and obj["body"]["training"]["epoch"] == epoch:
            kept.update({name: (run / name).read_bytes() for name in ("last.pt", "best.pt")})
            file.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(obj, file)

    monkeypatch.setattr("rnnvision.engine.checkpoint.torch.save", save)
    return kept
