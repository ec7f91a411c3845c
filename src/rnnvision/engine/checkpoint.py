"""Checkpoints: one file holding weights, resolved config, metrics, parameter count and version.

Files are written atomically (temporary file + rename) and read with
``torch.load(weights_only=True)``, which refuses to run code hidden in a pickle. A SHA-256 digest
over the whole payload is stored beside it, so a file changed after it was written is refused
too — which catches corruption, not a deliberate edit: anyone can recompute the digest, so the
payload's structure and the model's tensor shapes are checked before anything is built from it
(:func:`check_structure`, :func:`check_model_fits`). Every failure is a :class:`~rnnvision.errors.UserError` with one line of explanation.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnvision import __version__
from rnnvision.errors import UserError
from rnnvision.files import atomic_path

FORMAT = "rnnvision.checkpoint"
FORMAT_VERSION = 1


def _update_digest(digest: hashlib._Hash, value: Any) -> None:
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
    if (
        not isinstance(raw, dict)
        or set(raw) != {"body", "sha256"}
        or not isinstance(raw["body"], dict)
        or (raw["body"].get("format") != FORMAT)
    ):
        raise UserError(f"{path} is a PyTorch file but not an rnnvision checkpoint")
    body = raw["body"]
    try:
        digest = payload_digest(body)
    except RecursionError:
        raise UserError(f"{path} nests its data too deeply to be an rnnvision checkpoint") from None
    if digest != raw["sha256"]:
        raise UserError(f"{path} was modified after it was written (SHA-256 mismatch); it cannot be trusted")
    if not isinstance(body.get("format_version"), int) or body["format_version"] > FORMAT_VERSION:
        raise UserError(
            f"{path} was written by a newer rnnvision ({body.get('rnnvision_version')}); upgrade to read it"
        )
    check_structure(body, path)
    return body


MAX_TENSORS = 100_000  # entries of one state dict; real models here have at most a few hundred
_REQUIRED = {"model_name": str, "task": str, "config": dict, "meta": dict, "state_dict": dict, "metrics": dict}
_TRAINING = {"epoch": int, "step": int, "optimizer": dict, "scheduler": dict, "history": list, "best_epoch": int}


def check_structure(body: dict[str, Any], path: str | Path) -> None:
    """Refuse a payload whose keys or types are not what rnnvision writes, before anything is built from it.

    The digest proves a file is unchanged since it was written, not who wrote it: a crafted file carries a
    valid digest too, so every field read later is checked here and in :func:`check_model_fits`.
    """
    for key, kind in _REQUIRED.items():
        if not isinstance(body.get(key), kind):
            raise UserError(
                f"{path}: checkpoint field {key!r} is missing or not a {kind.__name__}; the file is not one rnnvision wrote"
            )
    _check_state_dict(body["state_dict"], path, "state_dict")
    if not describes_a_dataset(body["meta"]):
        raise UserError(
            f"{path}: checkpoint field 'meta' does not describe a dataset (class_names, charset, in_chans, img_size)"
        )
    training = body.get("training")
    if training is not None:
        if not isinstance(training, dict) or any(not isinstance(training.get(k), t) for k, t in _TRAINING.items()):
            raise UserError(f"{path}: checkpoint field 'training' is damaged; resume from a last.pt rnnvision wrote")
        if "ema_state_dict" in training:
            _check_state_dict(training["ema_state_dict"], path, "training.ema_state_dict")


def describes_a_dataset(meta: dict[str, Any]) -> bool:
    """Whether a checkpoint's or an export's ``meta`` has the dataset facts prediction reads, of the
    right types: ``class_names`` (strings), ``charset`` (a string), ``in_chans`` (an int) and
    ``img_size`` (None or two positive ints), each optional."""
    names, charset, chans, size = (
        meta.get("class_names", ()),
        meta.get("charset", ""),
        meta.get("in_chans", 1),
        meta.get("img_size"),
    )
    return (
        isinstance(names, (list, tuple))
        and all(isinstance(n, str) for n in names)
        and isinstance(charset, str)
        and isinstance(chans, int)
        and (
            size is None
            or (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size))
        )
    )


def _check_state_dict(state: Any, path: str | Path, name: str) -> None:
    if not isinstance(state, dict) or len(state) > MAX_TENSORS:
        raise UserError(f"{path}: {name} must map at most {MAX_TENSORS:,} names to tensors")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise UserError(f"{path}: {name} entry {key!r} is not a named tensor; the file is not one rnnvision wrote")


def check_model_fits(body: dict[str, Any], path: str | Path) -> Any:
    """Build the checkpoint's model on the ``meta`` device (no memory) and compare every stored tensor's name,
    shape and dtype with it; return the validated :class:`~rnnvision.config.RunConfig`.

    So a crafted config (say, a hidden size of a million) is refused before a real allocation: the stored
    tensors, which the file's size bounds, must equal what the config builds.
    """
    from rnnvision.config import config_from_dict
    from rnnvision.models import create_model

    config = config_from_dict(body["config"], source=str(path))
    if config.model["name"] != body["model_name"] or config.task != body["task"]:
        raise UserError(
            f"{path}: model_name or task disagrees with the stored config; the file is not one rnnvision wrote"
        )
    options = {k: v for k, v in config.model.items() if k != "name"}
    try:
        with torch.device("meta"):
            expected = create_model(config.model["name"], **options).state_dict()
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a builder given values no run produced can fail in many ways
        raise UserError(
            f"{path}: its config does not build a {config.model['name']} model ({exc.__class__.__name__})"
        ) from None
    stored = body["state_dict"]
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        shown = ", ".join((missing + unexpected)[:3])
        raise UserError(f"{path}: weights do not fit {config.model['name']} (missing or unexpected: {shown})")
    for key, tensor in expected.items():
        if tuple(stored[key].shape) != tuple(tensor.shape) or stored[key].dtype != tensor.dtype:
            raise UserError(
                f"{path}: weights do not fit {config.model['name']}: {key} is {tuple(stored[key].shape)} "
                f"{stored[key].dtype}, the config builds {tuple(tensor.shape)} {tensor.dtype}"
            )
    return config


def model_from_payload(body: dict[str, Any], source: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model a verified payload describes and load its weights; returns the model in eval mode.

    The one place a checkpoint (or shipped weights, :mod:`rnnvision.weights`) becomes a model: the
    payload's fields are checked first (:func:`check_structure`, :func:`check_model_fits`).
    """
    from rnnvision.models import create_model

    check_structure(body, source)
    config = check_model_fits(body, source)
    model = create_model(config.model["name"], **{k: v for k, v in config.model.items() if k != "name"})
    try:
        model.load_state_dict(body["state_dict"])
    except RuntimeError as exc:
        raise UserError(f"{source}: weights do not fit {config.model['name']} ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in a checkpoint; returns (model in eval mode, checkpoint payload).

    :func:`rnnvision.weights.resolve` takes a shipped weights name as well.
    """
    state = load_checkpoint(path)
    return model_from_payload(state, path, device=device), state
