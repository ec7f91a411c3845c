"""Every registered model exports to ONNX and TorchScript and the exported graph computes what torch does.

Each model is built at its registry's tiny size, exported once per module (cached), and run on
three input shapes: batch sizes 1 and 3 at the export size, and batch 4 at a size not seen at
export wherever the family keeps image axes dynamic (the recognizers' width, ``reseg`` and
``pixelcnn``'s height and width). Outputs agree within 1e-4 of torch's, scaled by the output's
magnitude when that exceeds 1: both sides compute in float32 and only the order of the sums
differs (onnxruntime's kernels against torch's). The greedy CTC text and the segmentation mask
must be identical.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
from pathlib import Path

import pytest
import torch

from rnnvision.errors import UserError
from rnnvision.export import export_model
from rnnvision.export.onnx import load_onnx
from rnnvision.export.spec import EXPORT_TASKS, export_spec
from rnnvision.export.torchscript import load_torchscript
from rnnvision.models import create_model, get_model_entry, list_models
from rnnvision.ops.ctc import ctc_greedy_decode
from tests.export.graphs import all_ops, ops_as_loaded

pytest.importorskip("onnxruntime")
_DIR = Path(tempfile.mkdtemp(prefix="rnnvision-export-tests-"))


def tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, **get_model_entry(name).tiny).eval()


@functools.cache
def tiny_state(name: str) -> dict:
    """The metadata of the tiny ``name``: a class name per output class, as onnxruntime checks on load."""
    task = get_model_entry(name).task
    meta = {"name": "tiny", "task": task, "in_chans": 1, "img_size": None, "class_names": ["a", "b"], "charset": ""}
    if task == "recognize":
        meta.update(class_names=[], charset="0123456789abcdefghijklmnopqrstuvwxyz")
    if task in ("classify", "segment"):
        model = tiny_model(name)
        with torch.no_grad():
            scores = model(*model.example_inputs())  # (B, K) or (B, K, H, W)
        meta["class_names"] = [f"class {k}" for k in range(scores.shape[1])]
    return {"task": task, "meta": meta}


@functools.cache
def exported(name: str, fmt: str, quantize: str | None = None) -> Path:
    """Export the tiny ``name`` once per test session (the tracing takes a second or so)."""
    suffix = ".onnx" if fmt == "onnx" else ".ts.pt"
    out = _DIR / f"{name}{'.int8' if quantize else ''}{suffix}"
    return export_model(tiny_model(name), tiny_state(name), out=out, format=fmt, quantize=quantize)


def input_sets(name: str) -> list[tuple[torch.Tensor, ...]]:
    """Three batches: sizes 1 and 3 as exported, then batch 4 at a new size on the dynamic axes."""
    model = tiny_model(name)
    spec = export_spec(model, task=get_model_entry(name).task)
    example = spec.example_inputs[0]
    generator = torch.Generator().manual_seed(1)
    sets = []
    for batch, grow in ((1, 0), (3, 0), (4, 1)):
        size = list(example.shape[1:])
        for axis in spec.dynamic_image_axes:
            size[axis - 1] += grow * (9 if axis == 3 else 3)
        images = torch.rand(batch, *size, generator=generator)
        if get_model_entry(name).task == "generate":
            images = (images > 0.5).float()
        if len(spec.input_names) == 1:
            sets.append((images,))
            continue
        width = images.shape[-1]
        widths = torch.randint(4, width + 1, (batch,), generator=generator)
        widths[0] = width
        images = images * (torch.arange(width) < widths[:, None])[:, None, None, :]
        sets.append((images, widths))
    return sets


def assert_matches(name: str, ours: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> None:
    with torch.no_grad():
        reference = tiny_model(name)(*inputs)
    assert ours.shape == reference.shape, name
    scale = max(1.0, float(reference.abs().max()))
    assert float((ours - reference).abs().max()) <= 1e-4 * scale, name
    task = get_model_entry(name).task
    if task == "recognize":
        lengths = torch.div(inputs[1], 4, rounding_mode="floor")
        assert ctc_greedy_decode(ours, lengths) == ctc_greedy_decode(reference, lengths), name
    if task == "segment":
        assert torch.equal(ours.argmax(dim=1), reference.argmax(dim=1)), name


EXPORTABLE = [n for n in list_models() if get_model_entry(n).task in EXPORT_TASKS]


@pytest.mark.parametrize("name", [n for n in list_models() if get_model_entry(n).task not in EXPORT_TASKS])
def test_a_task_that_cannot_export_says_so_in_one_line(name, tmp_path):
    for fmt in ("onnx", "torchscript"):
        with pytest.raises(UserError, match=f"cannot export a {get_model_entry(name).task} model") as info:
            export_model(tiny_model(name), tiny_state(name), out=tmp_path / f"m.{fmt}", format=fmt)
        assert "\n" not in str(info.value) and not (tmp_path / f"m.{fmt}").exists()


@pytest.mark.parametrize("name", EXPORTABLE)
def test_onnxruntime_matches_torch_on_three_shapes(name):
    model, state = load_onnx(exported(name, "onnx"), threads=1)
    assert state["task"] == get_model_entry(name).task and state["model_name"] == name
    for inputs in input_sets(name):
        assert_matches(name, model(*inputs), inputs)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_torchscript_matches_torch_on_three_shapes(name):
    module, state = load_torchscript(exported(name, "torchscript"))
    assert state["task"] == get_model_entry(name).task
    for inputs in input_sets(name):
        with torch.no_grad():
            assert_matches(name, module(*inputs), inputs)


def test_reseg_with_both_front_end_stages_exports_with_dynamic_height_and_width(tmp_path):
    """The front end's convolutions and max-pool (``stem_chans``, ``pooled_chans``) keep the image axes dynamic."""
    torch.manual_seed(0)
    options = {"hidden_sizes": (3, 4), "decoder_chans": 4, "stem_chans": (5,), "pooled_chans": (6,)}
    model = create_model("reseg", **options).eval()
    onnx_model, _ = load_onnx(export_model(model, tiny_state("reseg"), out=tmp_path / "r.onnx"), threads=1)
    generator = torch.Generator().manual_seed(1)
    for batch, height, width in ((1, 13, 11), (3, 13, 11), (4, 21, 30)):
        images = torch.rand(batch, 1, height, width, generator=generator)
        with torch.no_grad():
            reference = model(images)
        ours = onnx_model(images)
        assert float((ours - reference).abs().max()) <= 1e-4 * max(1.0, float(reference.abs().max()))
        assert torch.equal(ours.argmax(dim=1), reference.argmax(dim=1))


def test_onnx_metadata_carries_what_a_runtime_needs():
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported("crnn", "onnx"))).metadata_props}
    assert props["task"] == "recognize" and props["model"] == "crnn"
    assert props["charset"] == tiny_state("crnn")["meta"]["charset"] and props["ctc_blank"] == "0"
    assert props["width_stride"] == "4" and props["channels"] == "1" and "[0, 1]" in props["normalization"]
    assert '"width"' in props["dynamic_axes"] and props["quantization"] == "none"
    props = {p.key: p.value for p in onnx.load(str(exported("row_lstm", "onnx"))).metadata_props}
    assert json.loads(props["class_names"]) == tiny_state("row_lstm")["meta"]["class_names"]
    assert props["task"] == "classify"


@pytest.mark.parametrize("name", ["crnn", "row_bilstm", "crnn_gru"])
def test_int8_onnx_quantizes_the_weights_and_stays_close(name):
    import onnx

    graph = onnx.load(str(exported(name, "onnx", "int8")))
    ops = {node.op_type for node in graph.graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeLSTM" in ops
    if "gru" not in name:
        assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops  # every LSTM runs on int8 weights
    assert {p.key: p.value for p in graph.metadata_props}["quantization"] == "int8 dynamic"
    model, _ = load_onnx(exported(name, "onnx", "int8"), threads=1)
    for inputs in input_sets(name):
        with torch.no_grad():
            reference = tiny_model(name)(*inputs)
        # int8 weights (per tensor, 1/127 of the largest) and int8 activations: a few percent of the scale
        assert float((model(*inputs) - reference).abs().max()) <= 0.05 * float(reference.abs().max())


def close_to_torch(name: str, model, *, tolerance: float) -> None:
    for inputs in input_sets(name):
        with torch.no_grad():
            reference = tiny_model(name)(*inputs)
        assert float((model(*inputs) - reference).abs().max()) <= tolerance * float(reference.abs().max()), name


def test_int8_onnx_quantizes_the_mdlstm_scan_body():
    import onnx

    ops = all_ops(onnx.load(str(exported("mdlstm_seg", "onnx", "int8"))).graph)
    assert "MatMul" not in ops and ops.count("MatMulInteger") >= 2  # the step of both layers
    close_to_torch("mdlstm_seg", load_onnx(exported("mdlstm_seg", "onnx", "int8"), threads=1)[0], tolerance=0.1)


@pytest.mark.parametrize("name", ["crnn", "mdlstm_seg"])
def test_int8_with_calibration_quantizes_the_convolutions_statically(name, tmp_path, caplog):
    import onnx

    names = export_spec(tiny_model(name), task=get_model_entry(name).task).input_names
    calibration = [dict(zip(names, inputs)) for inputs in input_sets(name)]
    with caplog.at_level(logging.WARNING):
        out = export_model(
            tiny_model(name), tiny_state(name), out=tmp_path / "q.onnx", quantize="int8", calibration=calibration
        )
    assert not [r.message for r in caplog.records if r.levelno >= logging.WARNING]  # no quantizer advice
    graph = onnx.load(str(out))
    int8_weights = {t.name for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    dequantized = {n.output[0]: n.input[0] for n in graph.graph.node if n.op_type == "DequantizeLinear"}
    convolutions = [n for n in graph.graph.node if n.op_type == "Conv"]
    assert convolutions and all(dequantized.get(n.input[1]) in int8_weights for n in convolutions)
    assert all(n.input[0] in dequantized for n in convolutions)  # uint8 activations in, as calibrated
    loaded = ops_as_loaded(out, tmp_path)  # what onnxruntime runs: the QDQ pairs fused into int8 kernels
    assert loaded.count("QLinearConv") == len(convolutions) and "Conv" not in loaded
    if name == "crnn":  # each block's Relu folds into its convolution; the padding mask runs on uint8
        assert "Relu" not in loaded and loaded.count("QLinearMul") >= len(convolutions)
    assert {p.key: p.value for p in graph.metadata_props}[
        "quantization"
    ] == "int8 dynamic, convolutions static (calibrated)"
    # activations quantized to 8 bits with ranges from three small batches: a tenth of the scale
    close_to_torch(name, load_onnx(out, threads=1)[0], tolerance=0.1)
    with pytest.raises(UserError, match="calibration inputs serve only an int8 ONNX export"):
        export_model(tiny_model(name), tiny_state(name), out=tmp_path / "f.onnx", calibration=calibration)


def test_int8_torchscript_runs_its_linear_layers_in_int8():
    module, state = load_torchscript(exported("row_lstm", "torchscript", "int8"))
    assert "quantized" in str(module.inlined_graph)
    for inputs in input_sets("row_lstm"):
        with torch.no_grad():
            reference = tiny_model("row_lstm")(*inputs)
            assert float((module(*inputs) - reference).abs().max()) <= 0.05 * float(reference.abs().max())


def test_export_refuses_to_overwrite_and_unknown_formats(tmp_path):
    taken = tmp_path / "taken.onnx"
    taken.write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        export_model(tiny_model("row_rnn"), tiny_state("row_rnn"), out=taken)
    assert taken.read_text() == "mine"
    with pytest.raises(UserError, match="unknown export format 'tflite'"):
        export_model(tiny_model("row_rnn"), tiny_state("row_rnn"), out=tmp_path / "m", format="tflite")
    with pytest.raises(UserError, match="only one is int8"):
        export_model(tiny_model("row_rnn"), tiny_state("row_rnn"), out=tmp_path / "m", quantize="int4")


def test_load_onnx_refuses_a_file_without_our_metadata(tmp_path):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.rand(1, 3),), str(plain), dynamo=False)
    with pytest.raises(UserError, match="not exported by `rnnvision export`"):
        load_onnx(plain)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a readable ONNX model"):
        load_onnx(tmp_path / "junk.onnx")
