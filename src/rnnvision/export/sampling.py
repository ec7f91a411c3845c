"""PixelRNN sampling outside PyTorch: the incremental step as ONNX graphs, and a sampler that runs them.

The likelihood graph (``rnnvision export``'s main file) gives every pixel's logits in one pass, but
sampling is sequential: each pixel needs the one before it. A Row LSTM or Diagonal BiLSTM model
therefore exports two more graphs beside ``NAME.onnx``:

- ``NAME.step.onnx``: (``window`` (B, C, 7, 7), the stem's view of the canvas around the pixel;
  ``col`` (), int64; the layers' states) -> (``logits`` of that pixel, the new states). One cell
  step per layer: :meth:`AutoregressiveImageModel.pixel_step`.
- ``NAME.end_row.onnx``: (the states) -> (the states for the next row). For the Diagonal BiLSTM
  this runs the right-to-left direction along the finished row, which cannot start before the
  row is complete; for the Row LSTM it moves the row's states up.

Both are traced for the model's image width (the states are (B, n, W)); the batch is dynamic.
:class:`OnnxSampler` reads them back and samples or completes images with the same loop as
the checkpoint (:func:`rnnvision.models.autoregressive.raster_autoregress`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, TypeGuard

import torch
from torch import Tensor, nn

from rnnvision.errors import UserError
from rnnvision.export.onnx import OPSET, set_metadata
from rnnvision.files import atomic_path
from rnnvision.models.autoregressive import AutoregressiveImageModel, State, raster_autoregress, stepping_fns


def sampling_paths(likelihood: Path) -> tuple[Path, Path]:
    """``NAME.onnx`` -> (``NAME.step.onnx``, ``NAME.end_row.onnx``)."""
    return likelihood.with_suffix(".step.onnx"), likelihood.with_suffix(".end_row.onnx")


def exports_sampling(model: nn.Module) -> TypeGuard[AutoregressiveImageModel]:
    """Whether ``model`` samples incrementally, so that it has sampling graphs to export."""
    return isinstance(model, AutoregressiveImageModel) and model.has_incremental()


def _state_names(model: AutoregressiveImageModel) -> list[str]:
    return [f"state{i}_{j}" for i, state in enumerate(_start(model, 1)) for j in range(len(state))]


def _start(model: AutoregressiveImageModel, batch: int) -> list[State]:
    return model.start_stepping(batch, model.img_size[1], model.stem.weight)


def _split(model: AutoregressiveImageModel, flat: tuple[Tensor, ...]) -> list[State]:
    """Flat state tensors (graph inputs) -> one tuple per body layer."""
    states, at = [], 0
    for state in _start(model, 1):
        states.append(tuple(flat[at : at + len(state)]))
        at += len(state)
    return states


class _Step(nn.Module):
    def __init__(self, model: AutoregressiveImageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, window: Tensor, col: Tensor, *flat: Tensor) -> tuple[Tensor, ...]:
        logits, states = self.model.pixel_step(window, col, _split(self.model, flat))
        return (logits, *(t for state in states for t in state))


class _EndRow(nn.Module):
    def __init__(self, model: AutoregressiveImageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, *flat: Tensor) -> tuple[Tensor, ...]:
        return tuple(t for state in self.model.end_row(_split(self.model, flat)) for t in state)


def check_sampling_paths_free(likelihood: Path) -> None:
    """Refuse, before anything is written, when a sampling graph's file exists already."""
    for path in sampling_paths(likelihood):
        if path.exists():
            raise UserError(f"{path} already exists; remove it or choose another --out")


def write_sampling_graphs(
    model: AutoregressiveImageModel, likelihood: Path, *, metadata: dict[str, str]
) -> tuple[Path, Path]:
    """Trace the step and end-of-row graphs beside ``likelihood`` (``NAME.onnx``); never overwrites."""
    import onnx

    check_sampling_paths_free(likelihood)
    step_path, row_path = sampling_paths(likelihood)
    model = model.cpu().eval()
    kernel = model.stem.kernel_size[0]
    window = torch.rand(2, model.in_chans, kernel, kernel)
    flat = tuple(t for state in _start(model, 2) for t in state)
    names = _state_names(model)
    batch_axis = {0: "batch"}
    graphs = (
        (
            _Step(model),
            (window, torch.tensor(3), *flat),
            ["window", "col", *names],
            ["logits", *(f"next_{n}" for n in names)],
        ),
        (_EndRow(model), flat, names, [f"next_{n}" for n in names]),
    )
    for path, (module, inputs, input_names, output_names) in zip((step_path, row_path), graphs):
        dynamic = {name: batch_axis for name in input_names + output_names if name != "col"}
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python values frozen at trace time
            torch.onnx.export(
                module,
                inputs,
                str(tmp),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
            graph = onnx.load(str(tmp))
            set_metadata(
                graph,
                {
                    **metadata,
                    "graph": path.name.split(".")[-2],
                    "levels": str(model.levels),
                    "sampling_size": json.dumps(list(model.img_size)),
                    "state_names": json.dumps(names),
                },
            )
            onnx.save(graph, str(tmp))
    return step_path, row_path


class OnnxSampler:
    """Samples and completes images with the exported sampling graphs, on onnxruntime.

    ``sample``, ``complete`` and ``autoregress`` behave as the model's methods of the same name
    (:class:`~rnnvision.models.autoregressive.AutoregressiveImageModel`, ``method="incremental"``).
    """

    def __init__(self, likelihood: str | Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        from rnnvision.export.metadata import state_from_metadata

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.sessions = []
        for path in sampling_paths(Path(likelihood)):
            if not path.is_file():
                raise UserError(f"sampling graph not found: {path} (export the checkpoint again with rnnvision export)")
            self.sessions.append(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
        props = self.sessions[0].get_modelmeta().custom_metadata_map
        self.state: dict[str, Any] = state_from_metadata(props, source=str(likelihood))
        inputs = self.sessions[0].get_inputs()
        self.in_chans, self.kernel = inputs[0].shape[1], inputs[0].shape[2]
        self.state_names: list[str] = json.loads(props["state_names"])  # the exporter drops unused inputs:
        shapes = {i.name: tuple(i.shape[1:]) for i in inputs[2:]}  # feed each graph the ones it kept
        self.state_shapes = [shapes[name] for name in self.state_names]
        self.levels = int(props["levels"])
        self.img_size: tuple[int, int] = tuple(json.loads(props["sampling_size"]))

    def _run(self, session: Any, states: list[State], **inputs: Tensor) -> list[Tensor]:
        values = {**dict(zip(self.state_names, states[0])), **inputs}
        feed = {i.name: values[i.name].numpy() for i in session.get_inputs()}
        return [torch.from_numpy(t) for t in session.run(None, feed)]

    def _step(self, window: Tensor, col: Tensor, states: list[State]) -> tuple[Tensor, list[State]]:
        logits, *flat = self._run(self.sessions[0], states, window=window, col=col)
        return logits, [tuple(flat)]

    def _end_row(self, states: list[State]) -> list[State]:
        return [tuple(self._run(self.sessions[1], states))]

    def autoregress(
        self, canvas: Tensor, known: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(images, log p of each chosen value given the earlier ones), as the model's ``autoregress``."""
        batch, channels, _, width = canvas.shape
        if channels != self.in_chans or width != self.img_size[1]:
            raise UserError(
                f"the sampling graphs take images of {self.in_chans} channel(s) and width {self.img_size[1]}, "
                f"got {channels} channel(s) and width {width}"
            )
        start = [tuple(torch.zeros(batch, *shape) for shape in self.state_shapes)]  # one flat state for the graph
        pixel_logits, end_row = stepping_fns(self._step, self._end_row, start, self.kernel)
        return raster_autoregress(pixel_logits, end_row, canvas.float(), known, levels=self.levels, generator=generator)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` new images of the training size, (n, C, H, W) in [0, 1]."""
        canvas = torch.zeros(n, self.in_chans, *self.img_size)
        return self.autoregress(canvas, torch.zeros_like(canvas, dtype=torch.bool), generator=generator)[0]

    def complete(self, images: Tensor, known_mask: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Fill the pixels where ``known_mask`` is False, each sampled given every pixel before it."""
        return self.autoregress(images, known_mask, generator=generator)[0]
