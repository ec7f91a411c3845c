"""Where commands write: output folders that never swallow a user's files, run locks, output files.

Rules (README "Run directories"):

- An output folder is created, or reused only when it holds outputs of ours: a marker file
  ``.rnnvision-run.json`` names the run (``run_id``) and what wrote it (``kind``: train, demo,
  predict). A folder that holds anything else is refused, never emptied.
- While a run writes its folder it holds ``.rnnvision-lock`` (process id and host, kept under an
  ``flock``). A second run into the same folder is refused; a lock whose process died is stale
  and taken over.
- An output *file* may not be a folder, its folder must be writable, and an image's format is
  the one its suffix names.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from rnnvision.errors import UserError
from rnnvision.files import TEMP_NAME, atomic_write_text, remove_stale_temps

MARKER = ".rnnvision-run.json"
LOCK = ".rnnvision-lock"


def new_run_id() -> str:
    return uuid.uuid4().hex


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of ``folder`` (None when it has none); an unreadable marker is refused."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = None
    if not isinstance(marker, dict) or not isinstance(marker.get("run_id"), str):
        raise UserError(
            f"{path} is damaged; remove it only if {folder} holds nothing you need, or choose another --out"
        )
    return marker


def write_marker(folder: str | Path, *, run_id: str, kind: str, **info: Any) -> None:
    atomic_write_text(Path(folder) / MARKER, json.dumps({"run_id": run_id, "kind": kind, **info}, indent=2) + "\n")


def output_dir_marker(folder: str | Path) -> dict[str, Any] | None:
    """Check that ``folder`` may receive outputs; returns its marker (None: new or empty folder).

    Raises :class:`UserError` when ``folder`` is a file, is not writable, or holds files that are
    not outputs of ours.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file, not a folder; choose a new folder")
    parent = _existing_ancestor(folder)
    if not parent.is_dir():
        raise UserError(f"--out {folder}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {folder}: {parent} is not writable; choose another folder")
    if not folder.exists():
        return None
    marker = read_marker(folder)
    if marker is None and any(not _left_by_a_start(entry.name) for entry in folder.iterdir()):
        raise UserError(
            f"--out {folder} holds files that rnnvision did not write; choose a new or empty folder (nothing was changed)"
        )
    return marker


def _left_by_a_start(name: str) -> bool:
    """What a run killed before its marker existed leaves: its lock, a half-written marker."""
    return name == LOCK or (TEMP_NAME.fullmatch(name) is not None and name.startswith(f"{MARKER}.", 1))


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def prepare_output_dir(folder: str | Path, *, kind: str) -> Path:
    """Create ``folder`` (or reuse it when it holds ``kind`` outputs of ours) and mark it; for predict --out."""
    folder = Path(folder)
    marker = output_dir_marker(folder)
    if marker is not None and marker.get("kind") != kind:
        raise UserError(
            f"--out {folder} holds an rnnvision {marker.get('kind')} run; choose another folder for {kind} outputs"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if marker is None:
        write_marker(folder, run_id=new_run_id(), kind=kind)
    else:
        remove_stale_temps(folder)
    return folder


class RunLock:
    """Hold ``folder/.rnnvision-lock`` while a run writes ``folder`` (a context manager).

    The file records the process id and host; an ``flock`` on it is what excludes a second run,
    so a lock left by a killed process (flock released by the kernel) is stale and taken over.
    ``stale`` then holds what the dead holder had written.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
                raise UserError(
                    f"{self.path.parent} is being written by another rnnvision run ({who}); wait for it or choose another --out"
                ) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:  # the previous holder removed it as we opened it
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_holder(fd)
        self.stale = previous or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)  # releases the flock
            self._fd = None


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def check_output_file(path: str | Path, *, option: str = "--out") -> Path:
    """Refuse an output file that is a folder, already exists (rnnvision never overwrites a file it cannot
    tell it wrote) or whose folder cannot be written; returns the path."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {path / 'out.png'}")
    if path.exists() or path.is_symlink():
        raise UserError(f"{option} {path} already exists; remove it or choose another file")
    parent = _existing_ancestor(path.parent)
    if not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path} is not writable; choose another file")
    return path


def image_format(path: str | Path, *, option: str = "--out") -> str:
    """The Pillow format that ``path``'s suffix names (``PNG`` for ``.png``, ``JPEG`` for ``.jpg``)."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    name = Image.registered_extensions().get(suffix)
    if name is None or name not in Image.SAVE:
        raise UserError(
            f"{option} {path}: no image format is known for the suffix {suffix or '(none)'}; use .png or .jpg"
        )
    return name
