"""Atomic writes: the old file survives a failed write; a new file gets the usual permissions."""

import errno
import os

import pytest

from rnnvision.errors import UserError
from rnnvision.files import TEMP_NAME, atomic_path, atomic_write_text, remove_stale_temps


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "metrics.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.txt"]


def test_new_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.txt").read_text() == "x"


@pytest.mark.parametrize(
    "code,reason", [(errno.ENOSPC, "no space left on the device"), (errno.EROFS, "read-only file system")]
)
def test_a_failing_file_system_is_one_line_and_keeps_the_old_file(tmp_path, code, reason):
    target = tmp_path / "last.pt"
    target.write_text("old")
    with pytest.raises(UserError, match=f"cannot write {target}: {reason}") as caught, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(code, os.strerror(code))
    assert "\n" not in str(caught.value)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_stale_temps_are_exactly_the_names_atomic_path_makes(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr("rnnvision.files._commit", lambda tmp, target: made.append(tmp.name))
    for name in ("a.txt", ".hidden", "x.tmp"):
        atomic_write_text(tmp_path / name, "x")
    assert all(TEMP_NAME.fullmatch(name) for name in made) and len(made) == 3
    keep = ["a.tmp", ".a.tmp", ".a.1234567.tmp", ".a.ABCDEFGH.tmp", ".a.abcdefgh.tmp.x"]
    for name in [*made, *keep]:
        (tmp_path / name).write_text("x")
    (tmp_path / ".d.abcdefgh.tmp").mkdir()  # a folder is never ours to remove
    assert [p.name for p in remove_stale_temps(tmp_path)] == sorted(made)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, ".d.abcdefgh.tmp"])
