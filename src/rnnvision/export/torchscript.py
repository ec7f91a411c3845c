"""TorchScript export: the model traced with ``torch.jit.trace``, the metadata in the archive."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnvision.errors import UserError
from rnnvision.export.metadata import state_from_metadata
from rnnvision.export.spec import ExportSpec
from rnnvision.files import atomic_path

METADATA_FILE = "rnnvision.json"


def write_torchscript(model: nn.Module, spec: ExportSpec, out: Path, *, metadata: dict[str, str]) -> Path:
    """Trace ``model`` on ``spec.example_inputs`` and save it with ``metadata`` as ``rnnvision.json``.

    The trace records the same operations as the ONNX export, so the same axes stay dynamic.
    """
    model.eval()
    with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values frozen at trace time
        traced = torch.jit.trace(model, spec.example_inputs, check_trace=False)
        torch.jit.save(traced, str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata)})
    return out


def load_torchscript(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """``(scripted module, state)`` of an exported TorchScript file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"TorchScript model not found: {file}")
    extra = {METADATA_FILE: ""}
    module = torch.jit.load(str(file), map_location="cpu", _extra_files=extra)
    try:
        props = json.loads(extra[METADATA_FILE] or "{}")
    except json.JSONDecodeError:
        props = None  # refused below as foreign
    return module, state_from_metadata(props, source=str(file))
