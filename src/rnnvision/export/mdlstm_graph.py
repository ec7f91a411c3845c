"""The MDLSTM layers of an ONNX export as one lean ``Scan`` per layer, written node by node.

While ``torch.onnx.export`` traces, :func:`rnnvision.ops.mdlstm.mdlstm2d_skewed` leaves one
placeholder node (``rnnvision::MDLSTM2dScan``: the input image and the layer's three weight
tensors) per layer; :func:`expand_mdlstm_nodes` replaces each with standard ONNX operators that
compute :func:`~rnnvision.ops.mdlstm.mdlstm2d_reference`'s result for any height and width:

- outside the loop, once: one ``Gather`` that lays out every direction's input pixels in diagonal
  order — step k, then row i: pixel (i, k - i) of that direction's image mirrored so that its corner
  is at the top left, only the pixels that exist, (D, Hi*Wi*B, C) — and one ``Pad`` that appends a
  column of ones for the bias;
- a ``Scan`` over the K = Hi + Wi - 1 diagonals whose body (20 nodes) computes only the diagonal's
  rows lo..hi, as the wavefront does, from per-step bounds precomputed as scanned tables: one
  ``MatMul`` per step for all directions, ``[h_row | h_{row-1} | x | 1] @ [U_h; U_v; W; b]``, on
  the left and upper predecessors' rows of the carried state (which has a zero row above row 0)
  and the diagonal's pixels, then ``Pad`` back to the full column (zero state outside the diagonal,
  which the next diagonal reads as "no predecessor");
- after it, one ``Gather`` reads each direction's pixels back from their step and row (unskewed and
  mirrored back) and a ``Transpose`` gives (D, B, H, Hi, Wi), what the traced model expects.

Why this form (BENCHMARKS.md, "mdlstm_seg in onnxruntime"): at batch 1 a step's cost is mostly
per-node overhead, so the step has as few nodes as we could make it, and the ``MatMul`` of
small matrices is cheaper once than in pieces. Earlier forms spent more: one product against
``[U_h | U_v]`` sliced after (its 5H-wide slices cost two thirds of the product), one ``MatMul``
per predecessor plus one for the input terms of all pixels before the loop, gathered into a
skewed map twice the size of the image (mirroring with ``Slice`` and skewing by padding and
reshaping cost more than the loop).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnvision.ops.mdlstm import CORNERS, ONNX_DOMAIN, ONNX_SCAN_OP


class _Builder:
    """Collects the nodes and initializers of one expansion, named under a unique prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.count = prefix, 0
        self.nodes: list[Any] = []  # onnx.NodeProto
        self.initializers: list[Any] = []  # onnx.TensorProto

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = np.int64) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, hint: str = "", outputs: int = 1, **attrs: Any) -> Any:
        """Append a node; returns its output name (or the list of names when ``outputs`` > 1)."""
        from onnx import helper

        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type), **attrs))
        return names[0] if outputs == 1 else names


def _scan_body(b: _Builder, *, pixels: str, weights: str, hidden: int) -> Any:
    """The graph of one step: state (h, c) (D, (Hi+1)B, H), zero rows outside the diagonal; scanned
    inputs: the diagonal's rows in ``pixels`` (D, Hi*Wi*B, C+1, read from the outer scope) and in the
    state, and the pads back to the full column; outputs the new state and h."""
    from onnx import TensorProto, helper

    body = _Builder(b.prefix + "/step")
    h_prev, c_prev, x_start, x_end, start, end, up_end, left_start, pads = (
        body.name(n) for n in ("h", "c", "x_start", "x_end", "start", "end", "up_end", "left_start", "pads")
    )
    rows = body.const([1])  # the axis of rows, in the pixels and in the state
    x = body.op("Slice", pixels, x_start, x_end, rows, hint="x")  # (D, nB, C+1): the diagonal's pixels
    h_left = body.op("Slice", h_prev, left_start, end, rows, hint="h_left")  # (D, nB, H): rows lo..hi
    h_up = body.op("Slice", h_prev, start, up_end, rows, hint="h_up")  # rows lo-1..hi-1
    inputs = body.op("Concat", h_left, h_up, x, axis=2, hint="inputs")  # (D, nB, 2H+C+1)
    a = body.op("MatMul", inputs, weights, hint="a")  # (D, nB, 5H): [i, f_h, f_v, o | g]
    gates, cand = body.op("Split", a, body.const([4 * hidden, hidden]), axis=2, outputs=2, hint="split")
    i, f_h, f_v, o = body.op("Split", body.op("Sigmoid", gates), axis=2, outputs=4, hint="gate")
    c_left = body.op("Slice", c_prev, left_start, end, rows, hint="c_left")  # rows lo..hi
    c_up = body.op("Slice", c_prev, start, up_end, rows, hint="c_up")  # rows lo-1..hi-1
    c = body.op("Sum", body.op("Mul", f_h, c_left), body.op("Mul", f_v, c_up), body.op("Mul", i, body.op("Tanh", cand)))
    h = body.op("Mul", o, body.op("Tanh", c), hint="h_new")  # (D, nB, H)
    h_next, c_next = body.op("Pad", h, pads, hint="h_next"), body.op("Pad", c, pads, hint="c_next")
    h_out = body.op("Identity", h_next, hint="h_out")

    def value(name: str, elem: int) -> Any:
        return helper.make_tensor_value_info(name, elem, None)

    float_, long_ = TensorProto.FLOAT, TensorProto.INT64
    scanned = (x_start, x_end, start, end, up_end, left_start, pads)
    inputs = [value(h_prev, float_), value(c_prev, float_)] + [value(name, long_) for name in scanned]
    outputs = [value(h_next, float_), value(c_next, float_), value(h_out, float_)]
    return helper.make_graph(body.nodes, body.prefix, inputs, outputs, initializer=body.initializers)


def _expand(
    b: _Builder, x: str, out: str, weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray, corners: list[str]
) -> None:
    """Nodes computing ``out`` (D, B, H, Hi, Wi) from ``x`` (B, C, Hi, Wi): see the module docstring."""
    from onnx import TensorProto, helper

    dirs, gates, chans = weight_ih.shape
    hidden = gates // 5
    f32 = np.float32
    # (D, 2H+C+1, 5H): rows for the left predecessor's h, the upper one's, the pixel's channels, the bias
    weights = b.const(np.concatenate([weight_hh, weight_ih, bias[:, :, None]], 2).transpose(0, 2, 1), "w", f32)
    flip_rows, flip_cols = (np.array([CORNERS[c][k] for c in corners], dtype=np.int64) for k in (0, 1))

    shape = b.op("Shape", x)
    batch, height, width = (b.op("Slice", shape, b.const([k]), b.const([k + 1])) for k in (0, 2, 3))  # each (1,)
    one, zero = b.const([1]), b.const([0])
    steps = b.op("Sub", b.op("Add", height, width), one)  # K = Hi + Wi - 1
    last_row, last_col = b.op("Sub", height, one), b.op("Sub", width, one)

    def arange(n: str, axes: list[int]) -> str:  # Range(n) unsqueezed at ``axes``
        return b.op(
            "Unsqueeze", b.op("Range", b.op("Squeeze", zero), b.op("Squeeze", n), b.op("Squeeze", one)), b.const(axes)
        )

    def mirror(t: str, last: str, flips: np.ndarray, shape: list[int]) -> str:  # t, or last - t where flipped
        return b.op("Add", t, b.op("Mul", b.const(flips.reshape(shape)), b.op("Sub", last, b.op("Add", t, t))))

    # per step k, the diagonal's rows lo..hi (the same in every direction's mirrored frame)
    k, i = arange(steps, [1]), arange(height, [0])  # (K, 1), (1, Hi)
    lo = b.op("Max", b.op("Sub", b.op("Add", k, one), width), zero)  # (K, 1)
    hi = b.op("Min", k, last_row)
    # every direction's pixels in its diagonal order, step k then row i: pixel (i, k - i) of its mirrored frame
    on_diagonal = b.op("And", b.op("GreaterOrEqual", i, lo), b.op("LessOrEqual", i, hi))  # (K, Hi)
    row = mirror(i, last_row, flip_rows, [-1, 1, 1])  # (D, 1, Hi)
    col = mirror(b.op("Sub", k, i), last_col, flip_cols, [-1, 1, 1])  # (D, K, Hi), off the image where off the diagonal
    raster = b.op("Reshape", b.op("Add", b.op("Mul", row, width), col), b.const([dirs, -1]))
    raster = b.op("Compress", raster, b.op("Reshape", on_diagonal, b.const([-1])), axis=1)  # (D, Hi*Wi)
    pixels = b.op("Transpose", x, perm=[2, 3, 0, 1])  # (Hi, Wi, B, C)
    pixels = b.op("Reshape", pixels, b.op("Concat", b.const([-1]), batch, b.const([chans]), axis=0))  # (Hi*Wi, B, C)
    pixels = b.op("Reshape", b.op("Gather", pixels, raster, axis=0), b.const([0, -1, chans]))  # (D, Hi*Wi*B, C)
    pixels = b.op("Pad", pixels, b.const([0, 0, 0, 0, 0, 1]), b.const(1.0, "one", f32))  # (D, Hi*Wi*B, C+1)
    # per step, its rows in the pixels (after the steps before it) and in the state (row r+1 holds image row r)
    size = b.op("Add", b.op("Sub", hi, lo), one)  # (K, 1): the diagonal's length
    x_end = b.op("Mul", b.op("CumSum", size, b.const(0)), batch)
    x_start = b.op("Sub", x_end, b.op("Mul", size, batch))
    start, left_start = b.op("Mul", lo, batch), b.op("Mul", b.op("Add", lo, one), batch)
    end, up_end = b.op("Mul", b.op("Add", hi, b.const([2])), batch), b.op("Mul", b.op("Add", hi, one), batch)
    nothing = b.op("Sub", k, k)
    pads = b.op(
        "Concat", nothing, left_start, nothing, nothing, b.op("Mul", b.op("Sub", last_row, hi), batch), nothing, axis=1
    )  # (K, 6): zero rows above and below the diagonal's
    state = b.op(
        "ConstantOfShape",
        b.op("Concat", b.const([dirs]), b.op("Mul", b.op("Add", height, one), batch), b.const([hidden]), axis=0),
        value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]),
    )
    body = _scan_body(b, pixels=pixels, weights=weights, hidden=hidden)
    scanned = (x_start, x_end, start, end, up_end, left_start, pads)
    _, _, states = b.op("Scan", state, state, *scanned, outputs=3, body=body, num_scan_inputs=len(scanned))
    # (K, D, (Hi+1)B, H) -> each direction's pixel (r, c) read back at its step and row: (D, B, H, Hi, Wi)
    states = b.op(
        "Reshape", states, b.op("Concat", b.const([-1]), batch, b.const([hidden]), axis=0)
    )  # (K*D*(Hi+1), B, H)
    r, c = arange(height, [0, 2]), arange(width, [0, 1])  # (1, Hi, 1), (1, 1, Wi)
    i = mirror(r, last_row, flip_rows, [-1, 1, 1])  # (D, Hi, 1): row in the scan frame
    j = mirror(c, last_col, flip_cols, [-1, 1, 1])  # (D, 1, Wi)
    flat = b.op("Add", b.op("Mul", b.op("Add", i, j), b.const([dirs])), b.const(np.arange(dirs).reshape(-1, 1, 1)))
    index = b.op("Add", b.op("Mul", flat, b.op("Add", height, one)), b.op("Add", i, one))  # (D, Hi, Wi)
    states = b.op("Gather", states, index, axis=0)  # (D, Hi, Wi, B, H)
    b.nodes.append(helper.make_node("Transpose", [states], [out], perm=[0, 3, 4, 1, 2]))  # (D, B, H, Hi, Wi)


def _inputs_of(graph: Any) -> set[str]:
    """Every name a node of ``graph`` or of its subgraphs (a ``Scan`` body's outer-scope reads) takes in."""
    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.HasField("g"):
                names |= _inputs_of(attribute.g)
    return names


def expand_mdlstm_nodes(model: Any) -> int:
    """Replace every ``rnnvision::MDLSTM2dScan`` node of the ``onnx.ModelProto`` in place; returns how many."""
    from onnx import numpy_helper

    graph = model.graph
    values = {t.name: t for t in graph.initializer}
    for node in graph.node:  # the exporter may hand weights over as Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = node.attribute[0].t
    expanded, nodes = 0, []
    for node in graph.node:
        if (node.domain, node.op_type) != (ONNX_DOMAIN, ONNX_SCAN_OP):
            nodes.append(node)
            continue
        corners = next(a.s.decode() for a in node.attribute if a.name == "corners").split(",")
        weights = [numpy_helper.to_array(values[name]).astype(np.float32) for name in node.input[1:]]
        builder = _Builder(f"mdlstm{expanded}")
        _expand(builder, node.input[0], node.output[0], weights[0], weights[1], weights[2], corners=corners)
        nodes += builder.nodes
        graph.initializer.extend(builder.initializers)
        expanded += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = _inputs_of(graph)
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    live = [node for node in graph.node if node.op_type != "Constant" or node.output[0] in used]
    del graph.node[:]
    graph.node.extend(live)
    imports = [o for o in model.opset_import if o.domain != ONNX_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(imports)
    return expanded
