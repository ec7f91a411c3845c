"""The MDLSTM layers of an ONNX export as one lean ``Scan`` per layer, written node by node.

While ``torch.onnx.export`` traces, :func:`rnnvision.ops.mdlstm.mdlstm2d_skewed` leaves one
placeholder node (``rnnvision::MDLSTM2dScan``: the input image and the layer's three weight
tensors) per layer; :func:`expand_mdlstm_nodes` replaces each with standard ONNX operators that
compute :func:`~rnnvision.ops.mdlstm.mdlstm2d_reference`'s result for any height and width:

- outside the loop, once: the input terms ``W x + b`` of every pixel and direction as one batched
  ``MatMul`` on the pixels laid out channels last, then one ``Gather`` that puts them in skewed
  order — step k, row i holds pixel (i, k - i) of that direction's image mirrored so that its
  corner is at the top left: (K, D, Hi*B, 5H) for K = Hi + Wi - 1 steps (a first version that
  mirrored with ``Slice`` and skewed by padding and reshaping spent more time in its
  ``Transpose`` and copies than in the loop);
- a ``Scan`` over the K columns whose body (21 nodes) computes only the rows that hold a
  pixel of the diagonal, rows lo..hi — as the wavefront does, half the skewed map's arithmetic on a
  square image — from per-step row bounds precomputed as scanned tables: one ``MatMul`` per
  predecessor for all directions, each on its own rows of the carried state (which has a zero row
  above row 0): ``h_row @ U_h`` for the left one, ``h_{row-1} @ U_v`` for the one above (one
  product on rows lo-1..hi against ``[U_h | U_v]``, sliced after, spent on copying its two 5H-wide
  slices about two thirds of what it spent multiplying: BENCHMARKS.md, "mdlstm_seg at batch 32"),
  one ``Sum`` for the pre-activations, and ``Pad`` back to the full column (zero state outside the
  diagonal, which the next diagonal reads as "no predecessor");
- after it, one ``Gather`` reads each direction's pixels back from their step and row (unskewed and
  mirrored back) and a ``Transpose`` gives (D, B, H, Hi, Wi), what the traced model expects.
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


def _scan_body(b: _Builder, *, u_h: str, u_v: str, hidden: int) -> Any:
    """The graph of one step: state (h, c) (D, (Hi+1)B, H), zero rows outside the diagonal; scanned
    inputs: the column's input terms (D, Hi*B, 5H) and its row bounds; outputs the new state and h."""
    from onnx import TensorProto, helper

    body = _Builder(b.prefix + "/step")
    h_prev, c_prev, z_col, start, end, z_end, left_start, pads = (
        body.name(n) for n in ("h", "c", "z", "start", "end", "z_end", "left_start", "pads")
    )
    z = body.op("Slice", z_col, start, z_end, body.const([1]), hint="z_rows")  # (D, nB, 5H): rows lo..hi
    h_left = body.op("Slice", h_prev, left_start, end, body.const([1]), hint="h_left")  # (D, nB, H): rows lo..hi
    h_up = body.op("Slice", h_prev, start, z_end, body.const([1]), hint="h_up")  # rows lo-1..hi-1
    m_left, m_up = body.op("MatMul", h_left, u_h, hint="left"), body.op("MatMul", h_up, u_v, hint="up")
    a = body.op("Sum", z, m_left, m_up, hint="a")  # (D, nB, 5H): [i, f_h, f_v, o | g]
    gates, cand = body.op("Split", a, body.const([4 * hidden, hidden]), axis=2, outputs=2, hint="split")
    i, f_h, f_v, o = body.op("Split", body.op("Sigmoid", gates), axis=2, outputs=4, hint="gate")
    c_left = body.op("Slice", c_prev, left_start, end, body.const([1]), hint="c_left")  # rows lo..hi
    c_up = body.op("Slice", c_prev, start, z_end, body.const([1]), hint="c_up")  # rows lo-1..hi-1
    c = body.op("Sum", body.op("Mul", f_h, c_left), body.op("Mul", f_v, c_up), body.op("Mul", i, body.op("Tanh", cand)))
    h = body.op("Mul", o, body.op("Tanh", c), hint="h_new")  # (D, nB, H)
    h_next, c_next = body.op("Pad", h, pads, hint="h_next"), body.op("Pad", c, pads, hint="c_next")
    h_out = body.op("Identity", h_next, hint="h_out")

    def value(name: str, elem: int) -> Any:
        return helper.make_tensor_value_info(name, elem, None)

    float_, long_ = TensorProto.FLOAT, TensorProto.INT64
    inputs = [
        value(h_prev, float_),
        value(c_prev, float_),
        value(z_col, float_),
        value(start, long_),
        value(end, long_),
        value(z_end, long_),
        value(left_start, long_),
        value(pads, long_),
    ]
    outputs = [value(h_next, float_), value(c_next, float_), value(h_out, float_)]
    return helper.make_graph(body.nodes, body.prefix, inputs, outputs, initializer=body.initializers)


def _expand(
    b: _Builder, x: str, out: str, weight_ih: np.ndarray, weight_hh: np.ndarray, bias: np.ndarray, corners: list[str]
) -> None:
    """Nodes computing ``out`` (D, B, H, Hi, Wi) from ``x`` (B, C, Hi, Wi): see the module docstring."""
    from onnx import helper

    dirs, gates, chans = weight_ih.shape
    hidden = gates // 5
    f32 = np.float32
    w_ih = b.const(weight_ih.transpose(0, 2, 1), "w_ih", f32)  # (D, C, 5H)
    bias_ = b.const(bias[:, None, :], "bias", f32)  # (D, 1, 5H)
    u_h = b.const(weight_hh[:, :, :hidden].transpose(0, 2, 1), "u_h", f32)  # (D, H, 5H): the left predecessor
    u_v = b.const(weight_hh[:, :, hidden:].transpose(0, 2, 1), "u_v", f32)  # the one above
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

    # input terms of every pixel and direction, channels last: (D*Hi*Wi, B, 5H), rows d*Hi*Wi + raster index
    pixels = b.op("Reshape", b.op("Transpose", x, perm=[2, 3, 0, 1]), b.const([-1, chans]))  # (Hi*Wi*B, C)
    z = b.op("Add", b.op("MatMul", pixels, w_ih), bias_)  # (D, Hi*Wi*B, 5H)
    z = b.op("Reshape", z, b.op("Concat", b.const([-1]), batch, b.const([gates]), axis=0))  # (D*Hi*Wi, B, 5H)
    # skewed, each direction in its own mirrored frame: step k, row i holds image pixel (i, k - i) of that
    # frame (clamped into the image where the diagonal has no pixel in row i: those rows are never read)
    k, i = arange(steps, [1, 2]), arange(height, [0, 1])  # (K, 1, 1), (1, 1, Hi)
    j = b.op("Max", b.op("Min", b.op("Sub", k, i), last_col), zero)  # (K, 1, Hi)
    row = mirror(i, last_row, flip_rows, [1, -1, 1])  # (1, D, Hi)
    col = mirror(j, last_col, flip_cols, [1, -1, 1])  # (K, D, Hi)
    index = b.op(
        "Add",
        b.op("Mul", b.op("Add", b.op("Mul", b.const(np.arange(dirs).reshape(1, -1, 1)), height), row), width),
        col,
    )  # (K, D, Hi): (d * Hi + row) * Wi + col
    z = b.op("Gather", z, index, axis=0)  # (K, D, Hi, B, 5H)
    z = b.op("Reshape", z, b.const([0, 0, -1, gates]))  # (K, D, Hi*B, 5H), rows i*B + b
    # per step k, the diagonal's rows lo..hi, as row offsets of the state (row r+1 holds image row r)
    k = b.op("Range", b.op("Squeeze", zero), b.op("Squeeze", steps), b.op("Squeeze", one))  # (K,)
    lo = b.op("Max", b.op("Sub", b.op("Add", k, one), width), zero)  # (K,)
    hi = b.op("Min", k, b.op("Sub", height, one))

    def column(rows: str) -> str:  # (K,) rows -> (K, 1) offsets along the (rows, batch) axis
        return b.op("Unsqueeze", b.op("Mul", rows, batch), one)

    start, end, z_end = column(lo), column(b.op("Add", hi, b.const([2]))), column(b.op("Add", hi, one))
    left_start = column(b.op("Add", lo, one))  # from state row lo+1: image rows lo..hi
    nothing = column(b.op("Sub", k, k))
    pads = b.op(
        "Concat",
        nothing,
        column(b.op("Add", lo, one)),
        nothing,
        nothing,
        column(b.op("Sub", b.op("Sub", height, one), hi)),
        nothing,
        axis=1,
    )  # (K, 6)
    state = b.op(
        "ConstantOfShape",
        b.op("Concat", b.const([dirs]), b.op("Mul", b.op("Add", height, one), batch), b.const([hidden]), axis=0),
        value=helper.make_tensor("zero", 1, [1], [0.0]),
    )
    body = _scan_body(b, u_h=u_h, u_v=u_v, hidden=hidden)
    _, _, states = b.op(
        "Scan", state, state, z, start, end, z_end, left_start, pads, outputs=3, body=body, num_scan_inputs=6
    )
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
