"""``rnnvision export``: a model as an ONNX or TorchScript file that runs without rnnvision.

:func:`export_model` takes a ``(model, state)`` pair — the one ``load_model(checkpoint)`` returns —
so any source of weights can feed it; :func:`export_checkpoint` is that for a checkpoint path.
:func:`rnnvision.export.onnx.load_onnx` reads an ONNX file back as ``(model, state)`` for
``rnnvision predict``. A PixelRNN's ONNX export also writes its sampling graphs
(:mod:`rnnvision.export.sampling`) beside the file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal

from torch import nn

from rnnvision.errors import UserError
from rnnvision.export.metadata import export_metadata
from rnnvision.export.quantize import Calibration
from rnnvision.export.spec import export_spec

Format = Literal["onnx", "torchscript"]
FORMATS: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
QUANTIZE = ("int8",)


def export_model(
    model: nn.Module,
    state: dict[str, Any],
    *,
    out: str | Path,
    format: Format = "onnx",
    quantize: str | None = None,
    calibration: Calibration | None = None,
) -> Path:
    """Export ``model`` (with its checkpoint ``state``: ``task``, ``meta``) to ``out``; returns the path.

    ``quantize="int8"`` stores the recurrent and linear weights as int8 (see
    :mod:`rnnvision.export.quantize`); with ``calibration`` (batches of the graph's inputs by input
    name, ONNX only) the convolutions too. An existing ``out`` is never overwritten.
    """
    if format not in FORMATS:
        raise UserError(f"unknown export format {format!r}; choose {' or '.join(FORMATS)}")
    if quantize not in (None, *QUANTIZE):
        raise UserError(f"unknown quantization {quantize!r}; the only one is int8")
    out = Path(out).expanduser()
    if out.exists():
        raise UserError(f"{out} already exists; remove it or choose another --out")
    model = model.cpu().eval()
    spec = export_spec(model, task=state["task"])
    name = getattr(model, "model_name", type(model).__name__)
    if calibration is not None and (format != "onnx" or not quantize):
        raise UserError("calibration inputs serve only an int8 ONNX export")
    convolutions = ", convolutions static (calibrated)" if calibration else ""
    extra = {"quantization": f"{quantize} dynamic{convolutions}" if quantize else "none"}
    metadata = export_metadata(model_name=name, task=state["task"], meta=state["meta"], spec=spec, **extra)
    if format == "torchscript":
        from rnnvision.export.quantize import quantize_linear_layers
        from rnnvision.export.torchscript import write_torchscript

        return write_torchscript(quantize_linear_layers(model) if quantize else model, spec, out, metadata=metadata)
    from rnnvision.export.onnx import write_onnx
    from rnnvision.export.sampling import check_sampling_paths_free, exports_sampling, write_sampling_graphs

    if exports_sampling(model):
        check_sampling_paths_free(out)
    if not quantize:
        write_onnx(model, spec, out, metadata=metadata)
    else:
        from rnnvision.export.quantize import quantize_onnx

        with tempfile.TemporaryDirectory() as tmp:
            float_graph = write_onnx(model, spec, Path(tmp) / "float.onnx", metadata=metadata)
            quantize_onnx(float_graph, out, metadata=metadata, calibration=calibration)
    if exports_sampling(model):  # the incremental sampling step as graphs of their own (float32 even with int8)
        write_sampling_graphs(model, out, metadata=metadata)
    return out


def default_out(checkpoint: str | Path, *, format: Format, quantize: str | None) -> Path:
    """``run/best.pt`` -> ``run/best.onnx`` (``run/best.int8.onnx``; ``.ts.pt`` for TorchScript)."""
    suffix = (f".{quantize}" if quantize else "") + (".ts" if format == "torchscript" else "") + FORMATS[format]
    return Path(checkpoint).expanduser().with_suffix(suffix)


def export_checkpoint(
    checkpoint: str | Path,
    *,
    out: str | Path | None = None,
    format: Format = "onnx",
    quantize: str | None = None,
    calibrate: int = 0,
    data_dir: str | None = None,
    download: bool = False,
) -> Path:
    """Export the model saved in ``checkpoint`` (or shipped weights, by name); ``out`` defaults to :func:`default_out`.

    ``calibrate=N`` (int8 ONNX only) also quantizes the convolutions, calibrated on the first N images
    of the checkpoint's training split, read from ``data_dir``.
    """
    from rnnvision.export.calibration import calibration_batches
    from rnnvision.weights.loading import resolve

    if calibrate and (format != "onnx" or not quantize):
        raise UserError("--calibrate serves only an int8 ONNX export (--format onnx --quantize int8)")
    model, state = resolve(checkpoint)
    calibration = calibration_batches(state, data_dir, items=calibrate, download=download) if calibrate else None
    target = out if out is not None else default_out(checkpoint, format=format, quantize=quantize)
    return export_model(model, state, out=target, format=format, quantize=quantize, calibration=calibration)
