"""An ONNX file whose rnnvision metadata is damaged or disagrees with its graph, and an input its graph
cannot take, are refused in one line."""

from __future__ import annotations

import json

import pytest

from rnnvision.errors import UserError
from rnnvision.export.onnx import load_onnx
from tests.export.test_export import exported

onnx = pytest.importorskip("onnx")


def edited(source, folder, change_props=None, change_meta=None):
    """A copy of the exported ``source`` with its metadata edited."""
    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    if change_meta:
        meta = json.loads(props["meta"])
        change_meta(meta)
        props["meta"] = json.dumps(meta)
    if change_props:
        change_props(props)
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    out = folder / "edited.onnx"
    onnx.save(model, str(out))
    return out


CASES = [
    ("row_lstm", lambda p: p.pop("meta"), None, r"metadata is damaged \(no 'meta'\)"),
    ("row_lstm", lambda p: p.pop("task"), None, r"metadata is damaged \(no 'task'\)"),
    ("row_lstm", lambda p: p.__setitem__("meta", "{not json"), None, r"'meta' is not JSON"),
    ("row_lstm", lambda p: p.__setitem__("meta", "[1, 2]"), None, r"'meta' does not describe a dataset"),
    ("row_lstm", None, lambda m: m.__setitem__("class_names", "ab"), r"'meta' does not describe a dataset"),
    ("crnn", lambda p: p.__setitem__("width_stride", "x"), None, r"'width_stride' is not a positive whole number"),
    ("row_lstm", None, lambda m: m.__setitem__("class_names", ["a"]), r"metadata names 1 classes, its graph gives"),
    ("mdlstm_seg", None, lambda m: m.pop("class_names"), r"metadata names 0 classes, its graph gives"),
    ("crnn", None, lambda m: m.__setitem__("charset", "01"), r"metadata names 3 classes, its graph gives 37"),
    (
        "row_lstm",
        None,
        lambda m: m.__setitem__("in_chans", 3),
        r"metadata says images of \(channels, height, width\) 3 x any x any",
    ),
]


@pytest.mark.parametrize("name,change_props,change_meta,message", CASES)
def test_damaged_or_disagreeing_metadata_is_refused_in_one_line(name, change_props, change_meta, message, tmp_path):
    path = edited(exported(name, "onnx"), tmp_path, change_props, change_meta)
    with pytest.raises(UserError, match=message) as error:
        load_onnx(path)
    assert "\n" not in str(error.value) and "export it again" in str(error.value)


def test_the_unedited_file_loads():
    model, state = load_onnx(exported("row_lstm", "onnx"))
    assert state["task"] == "classify" and model.model_name == "row_lstm"


def test_an_input_the_graph_cannot_take_is_refused_in_one_line():
    import torch

    model, _ = load_onnx(exported("crnn", "onnx"))
    images = torch.rand(1, 1, 30, 40)  # the graph takes images 32 pixels high
    with pytest.raises(UserError, match="onnxruntime could not run it") as error:
        model(images, torch.tensor([40]))
    assert "\n" not in str(error.value)
