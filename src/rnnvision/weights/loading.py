"""One door for every command: a checkpoint path or a shipped weights name -> (model, payload).

The payload of shipped weights has the shape a checkpoint's has (``model_name``, ``task``,
``config``, ``meta``, ``state_dict``, ``metrics``, ``num_params``), so the tasks, ``eval``,
``predict``, ``generate``, ``complete``, ``export``, ``serve`` and ``train.init_from`` use either
unchanged. A known weights name wins over a file of the same name (write ``./NAME`` for the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnvision import __version__
from rnnvision.engine.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, model_from_payload
from rnnvision.weights.catalogue import WeightsEntry, get_weights, is_weights_name, read_catalogue
from rnnvision.weights.store import read_state_dict


def payload_of(entry: WeightsEntry, state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The checkpoint-shaped payload of shipped weights (test metrics measured on these weights)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnvision_version": __version__,
        "model_name": entry.model,
        "task": entry.task,
        "config": entry.config,
        "meta": entry.meta,
        "state_dict": state_dict,
        "metrics": {"test": entry.test_metrics},
        "num_params": entry.num_params,
        "weights": entry.name,
    }


def is_weights_source(source: str | Path) -> bool:
    """True for a shipped weights name; a mistyped name (no such file either) is a one-line error."""
    if isinstance(source, str) and source in read_catalogue():
        return True
    if is_weights_name(source) and not Path(source).exists():
        get_weights(str(source))  # raises, listing the known names
    return False


def load_payload(source: str | Path) -> dict[str, Any]:
    """The verified payload of a checkpoint file or of shipped weights (SHA-256 checked either way)."""
    if is_weights_source(source):
        entry = get_weights(str(source))
        return payload_of(entry, read_state_dict(entry))
    return load_checkpoint(source)


def resolve(source: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The model (eval mode, on ``device``) and payload of a checkpoint path or a shipped weights name.

    Example::

        model, payload = rnnvision.load("mnist_row_lstm")       # shipped weights
        model, payload = rnnvision.load("runs/mnist/best.pt")   # a checkpoint
    """
    payload = load_payload(source)
    return model_from_payload(payload, str(source), device=device), payload
