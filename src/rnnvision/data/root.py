"""Where dataset files live, and how they get there.

The data root holds one folder per dataset, named like the dataset (``mnist/``,
``fashion-mnist/``, ...), the layout of ``shared/data``. The root is, in order: the
``--data-dir`` argument, ``$RNNVISION_DATA``, the per-user cache ``$XDG_CACHE_HOME/rnnvision``
(``~/.cache/rnnvision``). Downloads try the base URLs in ``$RNNVISION_MIRRORS`` (space-separated)
first, then the dataset's own mirrors; each file is checked against its MD5 and written
atomically, so an interrupted or corrupt download never leaves a file behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

from rnnvision.errors import UserError
from rnnvision.files import download


def user_cache() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/rnnvision``, else ``~/.cache/rnnvision``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnvision"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root: argument, else $RNNVISION_DATA, else the per-user cache."""
    if root:
        return Path(root).expanduser()
    if os.environ.get("RNNVISION_DATA"):
        return Path(os.environ["RNNVISION_DATA"]).expanduser()
    return user_cache()


def md5sum(path: Path, *, decompress: bool = False) -> str:
    """MD5 of a file's bytes, or with ``decompress`` of the bytes its gzip stream holds."""
    digest = hashlib.md5()
    with gzip.open(path, "rb") if decompress else open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RemoteFiles:
    """The files of a dataset folder, their MD5 sums, and mirrors that serve them by name.

    ``content_md5`` holds, for gzip files, the MD5 of the decompressed bytes: a file whose own MD5
    differs is still accepted when its contents match, since repackagers (Debian's
    ``dataset-fashion-mnist``) rewrite the gzip header (name, time) around the same deflate stream.
    """

    folder: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    content_md5: dict[str, str] = field(default_factory=dict)

    def is_intact(self, path: Path, name: str) -> bool:
        if md5sum(path) == self.md5[name]:
            return True
        if name not in self.content_md5:
            return False
        try:
            return md5sum(path, decompress=True) == self.content_md5[name]
        except (OSError, EOFError):  # not a gzip file, or a truncated one
            return False

    def fetch(self, root: str | os.PathLike | None, *, download: bool) -> Path:
        """Return the dataset folder with every file present and verified, downloading if asked."""
        folder = data_root(root) / self.folder
        missing = [name for name in self.md5 if not (folder / name).is_file()]
        if missing and not download:
            raise UserError(
                f"{self.folder}: missing {', '.join(missing)} in {folder}; put the files there, point "
                f"--data-dir (or RNNVISION_DATA) at a folder that holds {self.folder}/, or add --download"
            )
        for name in missing:
            self._download(name, folder / name)
        for name, expected in self.md5.items():
            if not self.is_intact(folder / name, name):
                raise UserError(
                    f"{folder / name} is corrupt (MD5 differs from {expected}); delete it and download again"
                )
        return folder

    def _download(self, name: str, target: Path) -> None:
        mirrors = os.environ.get("RNNVISION_MIRRORS", "").split() + list(self.mirrors)
        failures = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                download(url, target, intact=lambda tmp: self.is_intact(tmp, name), digest="MD5")
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                failures.append(f"{url} ({getattr(exc, 'reason', exc)})")
        raise UserError(f"could not download {name}: tried {'; '.join(failures)}")
