"""Checkpoints: one file holding weights, resolved config, metrics, parameter count and version.

Files are written atomically (temporary file + rename) and read with
``torch.load(weights_only=True)``, which refuses to run code hidden in a pickle. A SHA-256 digest
over the whole payload is stored beside it, so a file changed after it was written is refused
too. Every failure is a :class:`~rnnvision.errors.UserError` with one line of explanation.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnvision import __version__
from rnnvision.errors import UserError
from rnnvision.files import atomic_path

FORMAT = "rnnvision.checkpoint"
FORMAT_VERSION = 1


def _update_digest(digest, value: Any) -> None:
    """Feed a canonical encoding of a nested payload to ``digest`` (dict keys in sorted order)."""
    if isinstance(value, Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _update_digest(digest, key)
            _update_digest(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _update_digest(digest, item)
    else:
        digest.update(f"V{value!r}".encode())


def payload_digest(payload: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    _update_digest(digest, payload)
    return digest.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (state_dict, config, metrics, ...) as a checkpoint at ``path``, atomically."""
    body = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnvision_version": __version__, **payload}
    with atomic_path(path) as tmp, open(tmp, "wb") as file:  # a Python file: a full disk raises OSError (ENOSPC)
        torch.save({"body": body, "sha256": payload_digest(body)}, file)
    return Path(path)


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and verify a checkpoint; returns its payload. Never executes code from the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{path} is not a readable checkpoint (not a weights file, or it holds code or objects other than "
            "tensors and plain data; refusing to load it)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - an untrusted file can fail the reader in many ways
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UserError(f"{path} is not a readable checkpoint (truncated or not a PyTorch file: {reason})") from None
    if not isinstance(raw, dict) or set(raw) != {"body", "sha256"} or raw["body"].get("format") != FORMAT:
        raise UserError(f"{path} is a PyTorch file but not an rnnvision checkpoint")
    body = raw["body"]
    if payload_digest(body) != raw["sha256"]:
        raise UserError(f"{path} was modified after it was written (SHA-256 mismatch); it cannot be trusted")
    if body.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path} was written by a newer rnnvision ({body.get('rnnvision_version')}); upgrade to read it")
    return body
