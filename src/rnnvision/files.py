"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

Every write goes to a temporary file beside its target, named ``.<target name>.<8 random
characters>.tmp`` (what :func:`tempfile.mkstemp` makes of that prefix and suffix), and becomes
visible by one rename (:func:`_commit`). A process killed between the two leaves such a temporary
file behind; :func:`remove_stale_temps` removes exactly those names and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from rnnvision.errors import UserError

# mkstemp fills 8 characters from tempfile._RandomNameSequence.characters between prefix and suffix
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")

_WRITE_FAILURES = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a part of the path is a file, not a folder",
    errno.EFBIG: "file too large for the file system",
}


def _commit(tmp: Path, target: Path) -> None:
    """The one rename that makes a written file visible (tests inject crashes here)."""
    os.replace(tmp, target)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic on
    POSIX and Windows. On error the temporary file is removed and ``path`` is left untouched; a
    failure of the file system itself (disk full, permission denied, read-only) becomes a
    one-line :class:`UserError` that says so.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _write_error(target, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_current_umask())  # mkstemp creates 0600; give the usual mode
        _commit(tmp, target)
    except OSError as exc:
        raise _write_error(target, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_error(target: Path, exc: OSError) -> Exception:
    reason = None if exc.errno is None else _WRITE_FAILURES.get(exc.errno)
    if reason is None:
        return exc
    return UserError(f"cannot write {target}: {reason}; {target.name} was left as it was")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def download(url: str, target: str | os.PathLike, *, intact: Callable[[Path], bool], digest: str) -> None:
    """Stream ``url`` into ``target`` atomically; ``intact(temporary file)`` must accept the bytes first.

    Raises ``ValueError("<digest> mismatch")`` when ``intact`` refuses them and ``urllib.error.URLError`` / ``OSError``
    when the transfer fails; in every failure ``target`` is left as it was and no temporary file stays.
    """
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        if not intact(tmp):
            raise ValueError(f"{digest} mismatch")


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed atomic writes left in ``folder``; returns them.

    Only names of the exact form :func:`atomic_path` creates are touched, and only plain files.
    Call it where no other writer can be at work (a run directory under its lock).
    """
    removed = []
    for entry in Path(folder).iterdir():
        if TEMP_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return sorted(removed)
