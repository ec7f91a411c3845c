"""Weights files: where they are, their SHA-256, the download of an entry that carries a URL.

A file is looked for in the package (``shipped/``), then in the weights cache
(``$RNNVISION_WEIGHTS``, else ``weights/`` in the per-user cache of :func:`rnnvision.data.root.user_cache`);
an entry with a URL and no file is downloaded there (atomic, SHA-256 checked before it becomes
visible). Every read checks the SHA-256 of the bytes it then decodes, so a changed file is refused.
Tensors are stored with safetensors (no pickle); float16 files are widened to float32 on load.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
from pathlib import Path

import torch
from torch import Tensor

from rnnvision.errors import UserError
from rnnvision.weights import catalogue
from rnnvision.weights.catalogue import WeightsEntry

STORED_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def weights_cache() -> Path:
    """Where downloaded weights go: ``$RNNVISION_WEIGHTS``, else ``<user cache>/weights``."""
    from rnnvision.data.root import user_cache

    if os.environ.get("RNNVISION_WEIGHTS"):
        return Path(os.environ["RNNVISION_WEIGHTS"]).expanduser()
    return user_cache() / "weights"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def weights_path(entry: WeightsEntry) -> Path:
    """The entry's file: shipped in the package, else in the cache, else downloaded from its URL."""
    shipped = catalogue.FOLDER / entry.file
    if shipped.is_file():
        return shipped
    cached = weights_cache() / entry.file
    if cached.is_file():
        return cached
    if not entry.url:
        raise UserError(
            f"weights file {entry.file} of {entry.name!r} is missing from {catalogue.FOLDER} and has no URL; reinstall rnnvision"
        )
    from rnnvision.files import download

    try:
        download(entry.url, cached, intact=lambda tmp: sha256_of(tmp.read_bytes()) == entry.sha256, digest="SHA-256")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(
            f"could not download the weights {entry.name!r} from {entry.url} ({getattr(exc, 'reason', exc)})"
        ) from None
    return cached


def read_state_dict(entry: WeightsEntry) -> dict[str, Tensor]:
    """The entry's tensors, SHA-256 checked, float16 widened to float32."""
    path = weights_path(entry)
    data = path.read_bytes()
    if sha256_of(data) != entry.sha256:
        raise UserError(
            f"{path} does not match the SHA-256 in the weights catalogue; it was changed or damaged, refusing it "
            "(reinstall rnnvision, or delete it from the cache to download it again)"
        )
    return decode(data, source=path)


def decode(data: bytes, *, source: str | Path) -> dict[str, Tensor]:
    """The tensors of safetensors bytes, float16 widened to float32 (what the models compute in)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return widen(load(data))
    except SafetensorError as exc:
        raise UserError(f"{source} is not a readable safetensors file ({str(exc).splitlines()[0]})") from None


def narrow(state: dict[str, Tensor], dtype: str) -> dict[str, Tensor]:
    """The state dict as it is stored: floating tensors in ``dtype``, others unchanged, contiguous."""
    target = STORED_DTYPES[dtype]
    return {k: (v.to(target) if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def widen(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Stored tensors back to the float32 the models compute in."""
    return {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}


def to_bytes(state: dict[str, Tensor], dtype: str) -> bytes:
    """The safetensors bytes of ``state`` stored in ``dtype`` (what a weights file holds)."""
    from safetensors.torch import save

    return save(narrow(state, dtype))
