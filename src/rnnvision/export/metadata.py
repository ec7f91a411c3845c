"""The facts a runtime needs beside an exported graph, as flat string key/value pairs.

The same pairs go into an ONNX file's ``metadata_props`` and a TorchScript archive's
``rnnvision.json``; :func:`state_from_metadata` turns them back into the ``(task, meta)`` that
the prediction code of :mod:`rnnvision.tasks` reads from a checkpoint.
"""

from __future__ import annotations

import json
from typing import Any

from rnnvision.export.spec import ExportSpec
from rnnvision.weights.catalogue import NORMALIZATION as PIXELS

FORMAT_VERSION = "1"
NORMALIZATION = f"{PIXELS}; the graph applies any further normalisation itself"


def export_metadata(
    *, model_name: str, task: str, meta: dict[str, Any], spec: ExportSpec, **extra: Any
) -> dict[str, str]:
    """Metadata keys of an exported model (every value a string; lists and dicts as JSON).

    ``meta`` is the checkpoint's dataset facts (``class_names``, ``charset``, ``in_chans``,
    ``img_size``, ...); ``extra`` adds keys such as ``quantization``.
    """
    shape = (
        "(batch, channels, height, width)"
        if task != "recognize"
        else "(batch, channels, height, width); widths (batch,) int64"
    )
    props: dict[str, Any] = {
        "rnnvision.format_version": FORMAT_VERSION,
        "model": model_name,
        "task": task,
        "channels": meta.get("in_chans", 1),
        "img_size": list(meta["img_size"]) if meta.get("img_size") else None,
        "normalization": NORMALIZATION,
        "inputs": {
            name: shape if name == "images" else "valid width of each right-padded image" for name in spec.input_names
        },
        "dynamic_axes": {
            name: {str(axis): label for axis, label in axes.items()} for name, axes in spec.dynamic_axes.items()
        },
        "meta": meta,
        **extra,
    }
    if meta.get("class_names"):
        props["class_names"] = list(meta["class_names"])
    if task == "recognize":
        props["charset"] = meta.get("charset", "")
        props["ctc_blank"] = 0
        props["width_stride"] = 4
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in props.items() if value is not None
    }


def state_from_metadata(props: Any, *, source: str) -> dict[str, Any]:
    """``{"task", "meta", "model_name", "width_stride", "quantization"}`` from an exported model's metadata.

    The file may come from anywhere: a key that is missing or of the wrong type is refused in one
    line, as a damaged checkpoint is, before anything reads it."""
    from rnnvision.engine.checkpoint import describes_a_dataset
    from rnnvision.errors import UserError

    if not isinstance(props, dict) or props.get("rnnvision.format_version") != FORMAT_VERSION:
        raise UserError(f"{source} was not exported by `rnnvision export` (no rnnvision metadata); export it again")

    def damaged(what: str) -> UserError:
        return UserError(f"{source}: its rnnvision metadata is damaged ({what}); export it again")

    missing = [key for key in ("task", "model", "meta") if not isinstance(props.get(key), str)]
    if missing:
        raise damaged("no " + ", ".join(repr(key) for key in missing))
    try:
        meta = json.loads(props["meta"])
    except json.JSONDecodeError:
        raise damaged("'meta' is not JSON") from None
    if not isinstance(meta, dict) or not describes_a_dataset(meta):
        raise damaged("'meta' does not describe a dataset")
    stride = props.get("width_stride", "1")
    if not (isinstance(stride, str) and stride.isdigit() and int(stride) > 0):
        raise damaged("'width_stride' is not a positive whole number")
    return {
        "task": props["task"],
        "meta": meta,
        "model_name": props["model"],
        "width_stride": int(stride),
        "quantization": props.get("quantization", "none"),
    }
