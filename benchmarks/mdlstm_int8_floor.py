"""How far int8 can speed up ``mdlstm_seg`` in onnxruntime at batch 1: the step with its LSTM arithmetic removed.

    OMP_NUM_THREADS=1 python benchmarks/mdlstm_int8_floor.py [--rounds 60]

Exports the shipped ``digit_scenes_mdlstm`` weights three ways, each in float32 and int8, and times
them at batch 1 (one 48 x 48 canvas), 1 thread, in interleaved rounds:

- ``full``: the export as shipped (:mod:`rnnvision.export.mdlstm_graph`, 20 nodes a step);
- ``product only``: the step keeps its three slices, ``Concat``, ``MatMul`` (the part int8 speeds
  up) and a ``Pad`` of the product's first H columns into the state, and drops the gates and the cell
  (wrong results: a bound, not a model);
- ``empty``: the step only passes its state on (what the graph costs outside the steps' work).

If even ``product only`` stays under 1.5x, no rewrite of the step's elementwise part in standard
ONNX operators brings int8 to 1.5x float32 for this model on this CPU (BENCHMARKS.md, "mdlstm_seg
int8: the floor").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch

import rnnvision.export.mdlstm_graph as mdlstm_graph

sys.path.insert(0, str(Path(__file__).parent))
from bench_export import export_model, recipe_model, speed_inputs  # noqa: E402

FULL_BODY = mdlstm_graph._scan_body


def reduced_body(keep_product: bool):
    """A ``_scan_body`` replacement with the same inputs and outputs: the product only, or nothing."""

    def body(b: Any, *, pixels: str, weights: str, hidden: int) -> Any:
        from onnx import TensorProto, helper

        step = mdlstm_graph._Builder(b.prefix + "/step")
        names = ("h", "c", "x_start", "x_end", "start", "end", "up_end", "left_start", "pads")
        h_prev, c_prev, x_start, x_end, start, end, up_end, left_start, pads = (step.name(n) for n in names)
        if keep_product:
            rows = step.const([1])
            x = step.op("Slice", pixels, x_start, x_end, rows)
            h_left = step.op("Slice", h_prev, left_start, end, rows)
            h_up = step.op("Slice", h_prev, start, up_end, rows)
            a = step.op("MatMul", step.op("Concat", h_left, h_up, x, axis=2), weights)  # (D, nB, 5H)
            first = step.op("Slice", a, step.const([0]), step.const([hidden]), step.const([2]))  # (D, nB, H)
            h_next = step.op("Pad", first, pads)
        else:
            h_next = step.op("Identity", h_prev)
        c_next, h_out = step.op("Identity", c_prev), step.op("Identity", h_next)

        def value(name: str, elem: int) -> Any:
            return helper.make_tensor_value_info(name, elem, None)

        scanned = (x_start, x_end, start, end, up_end, left_start, pads)
        inputs = [value(h_prev, TensorProto.FLOAT), value(c_prev, TensorProto.FLOAT)]
        inputs += [value(name, TensorProto.INT64) for name in scanned]
        outputs = [value(name, TensorProto.FLOAT) for name in (h_next, c_next, h_out)]
        return helper.make_graph(step.nodes, step.prefix, inputs, outputs, initializer=step.initializers)

    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, state, source = recipe_model("digit_scenes_mdlstm", Path("/nonexistent"))
    inputs = speed_inputs("digit_scenes_mdlstm", 1)
    bodies = {"full": FULL_BODY, "product only": reduced_body(True), "empty": reduced_body(False)}
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in bodies.items():
            mdlstm_graph._scan_body = body
            for quantize in (None, "int8"):
                path = export_model(model, state, out=Path(tmp) / f"{name}-{quantize}.onnx", quantize=quantize)
                options = ort.SessionOptions()
                options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
                sessions[name, quantize] = (session, feed)
        mdlstm_graph._scan_body = FULL_BODY
    times: dict[tuple[str, str | None], list[float]] = {key: [] for key in sessions}
    for round_ in range(args.rounds + 3):
        for key, (session, feed) in sessions.items():
            start = time.perf_counter()
            session.run(None, feed)
            if round_ >= 3:  # warm-up rounds
                times[key].append(time.perf_counter() - start)
    print(f"{source}; batch 1, 1 thread, {args.rounds} interleaved rounds; ms as median")
    print("| step body | ORT fp32 ms | ORT int8 ms | int8 vs fp32 |")
    print("|---|---:|---:|---:|")
    for name in bodies:
        fp32, int8 = times[name, None], times[name, "int8"]
        ratio = statistics.median(a / b for a, b in zip(fp32, int8))
        print(f"| {name} | {statistics.median(fp32) * 1e3:.2f} | {statistics.median(int8) * 1e3:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
