"""ONNX export with torch's TorchScript-based exporter, and a model that runs an ONNX file.

The exporter: ``torch.onnx.export(..., dynamo=False)``. It traces the model once and maps
``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` to ONNX's ``LSTM`` / ``GRU`` / ``RNN`` ops, whose
sequence length follows the input; a padded batch's layers (CRNN's) become one such node per layer
that takes the lengths itself (:mod:`rnnvision.ops.onnx_recurrence`), so they export with a dynamic
batch and width. torch 2.13's default exporter (``dynamo=True``, via ``torch.export``) stops at the
input checks that read tensor values (``int(widths.min())``) and would need them rewritten.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnvision.errors import UserError
from rnnvision.export.mdlstm_graph import expand_mdlstm_nodes
from rnnvision.export.metadata import state_from_metadata
from rnnvision.export.spec import ExportSpec
from rnnvision.files import atomic_path
from rnnvision.layers.mdlstm import MDLSTM2d
from rnnvision.ops.mdlstm import ONNX_DOMAIN

OPSET = 17


def write_onnx(model: nn.Module, spec: ExportSpec, out: Path, *, metadata: dict[str, str]) -> Path:
    """Trace ``model`` on ``spec.example_inputs`` into an ONNX file at ``out`` carrying ``metadata``."""
    import onnx

    model.eval()
    with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values frozen at trace time
        torch.onnx.export(
            model,
            spec.example_inputs,
            str(tmp),
            input_names=list(spec.input_names),
            output_names=list(spec.output_names),
            dynamic_axes=spec.dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
            # the MDLSTM placeholders' domain, declared only when there are some (torch warns of an unused one)
            custom_opsets={ONNX_DOMAIN: 1} if any(isinstance(m, MDLSTM2d) for m in model.modules()) else None,
        )
        graph = onnx.load(str(tmp))
        expand_mdlstm_nodes(graph)  # the MDLSTM layers' placeholders -> standard operators
        set_metadata(graph, metadata)
        onnx.save(graph, str(tmp))
    return out


def set_metadata(graph: Any, metadata: dict[str, str]) -> None:
    """Replace the ``metadata_props`` of an ``onnx.ModelProto`` with ``metadata``."""
    del graph.metadata_props[:]
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)


class OnnxModel(nn.Module):
    """An ONNX file behind the calling convention of the torch model it was exported from.

    ``model(images)`` (or ``model(images, widths)`` for a recognizer) runs onnxruntime on the CPU
    and returns torch tensors, so the prediction code of :mod:`rnnvision.tasks` serves it unchanged.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            raise UserError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from None
        self.source = str(path)
        self.state = state_from_metadata(self.session.get_modelmeta().custom_metadata_map, source=self.source)
        _check_graph_fits(self.session, self.state, self.source)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.model_name = self.state["model_name"]

    def forward(self, *inputs: Tensor) -> Tensor:
        """Inputs as the torch model's forward; returns its (first) output as a CPU tensor."""
        feed = {name: x.detach().cpu().numpy() for name, x in zip(self.input_names, inputs)}
        try:
            outputs = self.session.run(None, feed)
        except Exception as exc:  # onnxruntime's own exception types: a graph edited by hand, say
            raise UserError(f"{self.source}: onnxruntime could not run it ({str(exc).splitlines()[0][:200]})") from None
        return torch.from_numpy(outputs[0])

    def output_lengths(self, widths: Tensor) -> Tensor:
        """(B,) image widths -> (B,) output columns, as the recognizer's ``output_lengths``."""
        return torch.div(widths, self.state["width_stride"], rounding_mode="floor")


# where a task's output holds its classes, and how many its metadata names
CLASS_AXIS = {"classify": -1, "segment": 1, "recognize": -1}


def _check_graph_fits(session: Any, state: dict[str, Any], source: str) -> None:
    """Refuse metadata that disagrees with the graph it describes: the image channels and any fixed
    height or width of the input, and the number of classes of the output (a recognizer's charset
    plus the CTC blank)."""
    meta, task = state["meta"], state["task"]
    images, output = session.get_inputs()[0].shape, session.get_outputs()[0].shape
    stated = [meta.get("in_chans", 1), *(meta.get("img_size") or (None, None))]
    graph = images[1:] if len(images) == 4 else []
    if any(isinstance(dim, int) and want is not None and dim != want for dim, want in zip(graph, stated)):
        said = " x ".join("any" if want is None else str(want) for want in stated)
        raise UserError(
            f"{source}: its metadata says images of (channels, height, width) {said}, its graph takes {images[1:]}; "
            "export it again"
        )
    if task in CLASS_AXIS:
        classes = len(meta.get("charset", "")) + 1 if task == "recognize" else len(meta.get("class_names", ()))
        dim = output[CLASS_AXIS[task]] if len(output) > 1 else None
        if isinstance(dim, int) and dim != classes:
            raise UserError(f"{source}: its metadata names {classes} classes, its graph gives {dim}; export it again")


def load_onnx(path: str | Path, *, threads: int | None = None) -> tuple[OnnxModel, dict[str, Any]]:
    """``(model, state)`` of an exported ONNX file, as ``load_model`` gives for a checkpoint."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"ONNX model not found: {file}")
    model = OnnxModel(file, threads=threads)
    return model, model.state
