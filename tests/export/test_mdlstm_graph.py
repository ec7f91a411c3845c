"""The MDLSTM layers' ONNX graph (one lean ``Scan`` per layer) computes what the per-pixel reference computes.

Each layer is exported once at one size, then run by onnxruntime on other heights, widths and
batch sizes — squares, single rows and columns, tall and wide — against
:func:`~rnnvision.ops.mdlstm.mdlstm2d_reference` in float64, for 1 to 4 directions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnvision.export.onnx import write_onnx
from rnnvision.export.spec import ExportSpec
from rnnvision.layers.mdlstm import MDLSTM2d
from rnnvision.ops.mdlstm import mdlstm2d_reference

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
SHAPES = [(1, 5, 7), (2, 1, 4), (3, 6, 1), (2, 9, 3), (1, 4, 11)]  # (batch, height, width)


def export_layer(layer: MDLSTM2d, out: Path) -> Path:
    spec = ExportSpec(
        input_names=("images",),
        output_names=("states",),
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "states": {0: "batch"}},
        example_inputs=(torch.rand(2, layer.in_chans, 4, 6),),
    )
    return write_onnx(layer, spec, out, metadata={})


def scan_bodies(path: Path) -> list:
    graph = onnx.load(str(path)).graph
    return [a.g for node in graph.node if node.op_type == "Scan" for a in node.attribute if a.name == "body"]


@pytest.mark.parametrize("directions", [1, 2, 3, 4])
def test_scan_graph_matches_the_reference_on_unseen_sizes(directions, tmp_path):
    torch.manual_seed(directions)
    layer = MDLSTM2d(3, 5, directions=directions, merge="concat").eval()
    with torch.no_grad():
        layer.weight_hh.mul_(2)  # larger recurrent weights: states far from zero carry errors further
    path = export_layer(layer, tmp_path / "mdlstm.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    for batch, height, width in SHAPES:
        x = torch.randn(batch, 3, height, width, generator=generator)
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        with torch.no_grad():
            weights = (p.double() for p in (layer.weight_ih, layer.weight_hh, layer.bias))
            want = mdlstm2d_reference(x.double(), *weights, corners=layer.corners)  # (D, B, H, Hi, Wi)
        want = want.transpose(0, 1).reshape(batch, directions * 5, height, width)
        assert got.shape == want.shape
        assert float((got.double() - want).abs().max()) <= 1e-5, (batch, height, width)


def test_the_graph_is_one_scan_per_layer_with_one_matmul_per_step(tmp_path):
    torch.manual_seed(0)
    layer = MDLSTM2d(3, 4, directions=4).eval()
    path = export_layer(layer, tmp_path / "mdlstm.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Scan") == 1 and "Loop" not in ops
    assert all(o.domain in ("", "ai.onnx") for o in model.opset_import)  # no placeholder left behind
    (body,) = scan_bodies(path)
    body_ops = [node.op_type for node in body.node]
    # [h_left | h_up | x | 1] @ [U_h; U_v; W; b], nothing else multiplied, and no node more than needed
    assert body_ops.count("MatMul") == 1 and len(body_ops) <= 20, body_ops
    assert [node.op_type for node in model.graph.node].count("MatMul") == 0  # the input terms are in the loop
