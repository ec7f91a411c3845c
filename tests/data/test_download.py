"""Downloads go through mirrors, check MD5, write atomically — tested on 127.0.0.1, never the internet."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import struct
import threading

import numpy as np
import pytest

from rnnvision.data import build_dataset, idx
from rnnvision.data.root import RemoteFiles
from rnnvision.errors import UserError


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mirror(tmp_path):
    """A small MNIST-shaped set served over HTTP from 127.0.0.1; yields (base_url, files, requests)."""
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.RandomState(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.randint(0, 256, (30, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(30) % 10,
        "t10k-images-idx3-ubyte.gz": rng.randint(0, 256, (10, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(10) % 10,
    }
    files = {name: _idx_bytes(array) for name, array in arrays.items()}
    for name, data in files.items():
        (served / name).write_bytes(data)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", files, requests, served
    server.shutdown()


def _remote(files, mirrors):
    return RemoteFiles(folder="mnist", md5={n: hashlib.md5(d).hexdigest() for n, d in files.items()}, mirrors=mirrors)


def test_download_fetches_verifies_and_loads(tmp_path, mirror, monkeypatch):
    base, files, requests, _ = mirror
    monkeypatch.setattr(idx, "MNIST", _remote(files, ("http://127.0.0.1:9/unreachable/", base)))
    root = tmp_path / "root"
    test = build_dataset("mnist", split="test", root=root, download=True, val_size=5)
    assert len(test) == 10 and test.images.shape == (10, 1, 28, 28)
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(files)  # no temp files left
    assert len(requests) == 4
    build_dataset("mnist", split="train", root=root, download=True, val_size=5)
    assert len(requests) == 4  # present files are not fetched again


def test_env_mirror_is_tried_first(tmp_path, mirror, monkeypatch):
    base, files, requests, _ = mirror
    monkeypatch.setattr(idx, "MNIST", _remote(files, ("http://127.0.0.1:9/unreachable/",)))
    monkeypatch.setenv("RNNVISION_MIRRORS", base)
    assert len(build_dataset("mnist", split="val", root=tmp_path, download=True, val_size=5)) == 5


def test_corrupt_download_is_rejected_and_leaves_nothing(tmp_path, mirror, monkeypatch):
    base, files, _, served = mirror
    remote = _remote(files, (base,))
    (served / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    monkeypatch.setattr(idx, "MNIST", remote)
    with pytest.raises(UserError, match=r"could not download t10k-labels-idx1-ubyte.gz.*MD5 mismatch"):
        build_dataset("mnist", split="test", root=tmp_path, download=True)
    assert not (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in (tmp_path / "mnist").iterdir() if p.name.startswith(".")]


def test_a_corrupt_local_file_is_reported(tmp_path, mirror, monkeypatch):
    base, files, _, _ = mirror
    monkeypatch.setattr(idx, "MNIST", _remote(files, (base,)))
    build_dataset("mnist", split="test", root=tmp_path, download=True, val_size=5)
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"changed")
    with pytest.raises(UserError, match="is corrupt"):
        build_dataset("mnist", split="test", root=tmp_path)


def test_a_repackaged_gzip_with_the_same_contents_is_accepted(tmp_path):
    """Debian's dataset-fashion-mnist rewrites the gzip headers: the file's MD5 differs, its contents do not."""
    payload = b"IDX payload" * 100
    original = gzip.compress(payload, mtime=848331386)
    repackaged = gzip.compress(payload, mtime=0)
    assert hashlib.md5(original).digest() != hashlib.md5(repackaged).digest()
    remote = RemoteFiles(
        folder="set",
        md5={"f.gz": hashlib.md5(original).hexdigest()},
        mirrors=(),
        content_md5={"f.gz": hashlib.md5(payload).hexdigest()},
    )
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "f.gz").write_bytes(repackaged)
    assert remote.fetch(tmp_path, download=False) == folder
    for changed in (gzip.compress(payload + b"x", mtime=0), b"not gzip at all", repackaged[:-9]):
        (folder / "f.gz").write_bytes(changed)
        with pytest.raises(UserError, match="is corrupt"):
            remote.fetch(tmp_path, download=False)
