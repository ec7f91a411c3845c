"""Weights files: where they are, their SHA-256, the download of an entry that carries a URL.

A file is looked for in the package (``shipped/``), then in the weights cache
(``$RNNVISION_WEIGHTS``, else ``weights/`` in the per-user cache of :func:`rnnvision.data.root.user_cache`);
an entry with a URL and no file is downloaded there (atomic, SHA-256 checked before it becomes
visible). Every read checks the SHA-256 of the bytes it then decodes, so a changed file is refused.
Tensors are stored with safetensors (no pickle), in one of three forms (an entry's ``dtype``):
``float32``; ``float16``; ``int8``, where every weight matrix and convolution kernel is kept as int8
with one float32 scale per output row (symmetric, ``scale = max |row| / 127``; the scale under the key
``NAME::scale``) and the other floating tensors in float16. On load everything is widened back to
the float32 the models compute in: the weights-only quantization saves bytes on disk, not work.
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

STORED_DTYPES = ("float16", "float32", "int8")
SCALE_SUFFIX = "::scale"  # int8 files: the per-row scales of the tensor of the same name
INT8_MIN_ELEMENTS = 1024  # smaller floating tensors (biases, norms) stay float16 in an int8 file


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


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(R, ...) float -> (R, ...) int8 and (R,) float32 scales with ``weight ~= int8 * scale`` row by row."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)  # (R, K)
    scale = (rows.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)  # (R,)
    quantized = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)  # (R, K)
    return quantized.reshape(weight.shape), scale


def narrow(state: dict[str, Tensor], dtype: str) -> dict[str, Tensor]:
    """The state dict as it is stored in ``dtype`` (see the module docstring); non-floating tensors unchanged."""
    if dtype not in STORED_DTYPES:
        raise ValueError(f"unknown stored dtype {dtype!r}; one of {', '.join(STORED_DTYPES)}")
    stored: dict[str, Tensor] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            stored[key] = value
        elif dtype == "int8" and value.dim() >= 2 and value.numel() >= INT8_MIN_ELEMENTS:
            stored[key], stored[key + SCALE_SUFFIX] = quantize_rows(value)
        else:
            stored[key] = value.to(torch.float32 if dtype == "float32" else torch.float16)
    return {k: v.contiguous() for k, v in stored.items()}


def widen(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Stored tensors back to the float32 the models compute in (int8 rows times their scales)."""
    widened: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        scale = state.get(key + SCALE_SUFFIX)
        if scale is not None:
            widened[key] = value.float() * scale.float().reshape(-1, *[1] * (value.dim() - 1))
        else:
            widened[key] = value.float() if value.dtype == torch.float16 else value
    return widened


def to_bytes(state: dict[str, Tensor], dtype: str) -> bytes:
    """The safetensors bytes of ``state`` stored in ``dtype`` (what a weights file holds)."""
    from safetensors.torch import save

    return save(narrow(state, dtype))
