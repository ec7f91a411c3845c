"""What an exported ONNX graph holds, and what onnxruntime makes of it when it loads the file."""

from __future__ import annotations

from pathlib import Path


def all_ops(graph) -> list[str]:
    """Op types of ``graph`` and of its subgraphs (a Scan or Loop body)."""
    ops = [node.op_type for node in graph.node]
    for node in graph.node:
        ops += [op for a in node.attribute if a.HasField("g") for op in all_ops(a.g)]
    return ops


def ops_as_loaded(path: Path, folder: Path) -> list[str]:
    """Op types of the graph onnxruntime runs for ``path``, after its optimizer's fusions."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / "as-loaded.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return all_ops(onnx.load(options.optimized_model_filepath).graph)
