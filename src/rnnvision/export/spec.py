"""What a model's exported graph takes and gives: input names, dynamic axes, example inputs.

One place decides, per model family, which axes stay dynamic in an exported graph:

- recognizers (``crnn``, ``crnn_gru``): ``images`` (B, C, H, W) and ``widths`` (B,) -> ``scores``
  (B, T, K), batch and width dynamic (T = W // 4);
- ``reseg``, ``mdlstm_seg`` and ``pixelcnn``: batch, height and width dynamic (``mdlstm_seg``
  through the skewed scan of :func:`rnnvision.ops.mdlstm.mdlstm2d_skewed`: in ONNX one ``Scan``
  per layer, :mod:`rnnvision.export.mdlstm_graph`; in TorchScript a scripted loop);
- every other model: batch dynamic, the image size fixed at the size it was built for (the
  classifiers read a fixed number of rows or pixels, the PixelRNN layers unroll their loops over
  rows or diagonals for one image size while the graph is traced).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from rnnvision.errors import UserError

# model class name -> image axes (of images (B, C, H, W)) that stay dynamic besides the batch
_DYNAMIC_IMAGE_AXES: dict[str, tuple[int, ...]] = {
    "CRNN": (3,),
    "ReSeg": (2, 3),
    "MDLSTMSegmenter": (2, 3),
    "PixelCNN": (2, 3),
}
_OUTPUT_NAMES = {"classify": "logits", "recognize": "scores", "segment": "logits", "generate": "logits"}
# The tasks an exported graph can serve: their models read images. The long-range lab's sequence
# models (regress, tag) read synthetic sequences that no image file holds; they are refused.
EXPORT_TASKS = tuple(_OUTPUT_NAMES)
_AXIS_NAMES = {0: "batch", 2: "height", 3: "width"}


@dataclass(frozen=True)
class ExportSpec:
    """Inputs and outputs of an exported graph and which axes stay dynamic."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    example_inputs: tuple[Tensor, ...]

    @property
    def dynamic_image_axes(self) -> tuple[int, ...]:
        """Axes of ``images`` besides the batch that may differ from the example's."""
        return tuple(axis for axis in self.dynamic_axes["images"] if axis)


def export_spec(model: nn.Module, *, task: str) -> ExportSpec:
    """The :class:`ExportSpec` of ``model`` (serving ``task``); an unknown task raises :class:`UserError`."""
    kind = type(model).__name__
    if task not in _OUTPUT_NAMES:
        raise UserError(f"cannot export a {task} model; export serves the image tasks {', '.join(EXPORT_TASKS)}")
    example = tuple(model.example_inputs(batch_size=2))  # type: ignore[operator]  # every registered model has it
    axes = (0, *_DYNAMIC_IMAGE_AXES.get(kind, ()))
    dynamic = {"images": {axis: _AXIS_NAMES[axis] for axis in axes}}
    names: tuple[str, ...] = ("images",)
    output = _OUTPUT_NAMES[task]
    if task == "recognize":
        names = ("images", "widths")
        dynamic["widths"] = {0: "batch"}
    dynamic[output] = {0: "batch"}  # the other output axes follow the inputs' by shape inference
    return ExportSpec(
        input_names=names, output_names=(output,), dynamic_axes=dynamic, example_inputs=example[: len(names)]
    )
