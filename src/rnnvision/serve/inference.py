"""What ``rnnvision serve`` computes: loaded models, upload checks, predictions with their pictures.

Nothing here imports the web framework, so it is tested and reused without it. A prediction is
what ``rnnvision predict --json`` returns for the uploaded image (the task's own
``predict_images`` runs on it, in memory), plus what the page draws:

- classify: every class probability, the model input, and for a row reader the first layer's
  gate activations row by row (T = H steps) with the class probabilities after each row;
- recognize: the model input, per-column best classes, the CTC forced alignment of the text
  (each character's box and probability come with the prediction, in the image's pixels);
- segment: the mask (palette PNG, pixel value = class), a confidence map, the legend;
- generate (``complete``): several completions of the known top rows with per-pixel
  probabilities.

One forward pass gives both the answer and the pictures (:func:`predict_batch`); pictures (2-D
arrays) travel as one byte per value, base64-encoded (:func:`encode_picture`).
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import nn

from rnnvision.data.digit_frame import frame_digit
from rnnvision.data.transforms import to_8bit
from rnnvision.errors import UserError
from rnnvision.models.classifier import ReadingClassifier
from rnnvision.tasks import Task, make_task
from rnnvision.tasks.recognize import RecognitionTask

if TYPE_CHECKING:
    from rnnvision.models.autoregressive import AutoregressiveImageModel

Prepare = Literal["none", "digit", "line"]
PREPARE_MODES = ("none", "digit", "line")
_SAVABLE_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")


class UploadError(Exception):
    """A request the server refuses: ``status`` (HTTP) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServedModel:
    """A checkpoint loaded once: its model in eval mode, checkpoint payload, task and a lock."""

    name: str
    source: str
    model: nn.Module
    state: dict[str, Any]
    task: Task
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def meta(self) -> dict[str, Any]:
        return self.state["meta"]


def load_served(source: str, *, name: str) -> ServedModel:
    """Load one model to serve (a checkpoint or a shipped weights name), through
    :func:`rnnvision.engine.prediction.load_source` (the one place a model source becomes a model). The page draws a model's insides (gates, columns), so
    an exported ``.onnx`` file is refused.
    """
    from rnnvision.engine.prediction import load_source

    if Path(source).suffix == ".onnx":
        raise UserError(
            f"{source}: serve needs a checkpoint (it draws the model's gates and columns); "
            "an .onnx file runs with rnnvision predict"
        )
    model, state, _ = load_source(source, device="cpu")
    return ServedModel(
        name=name, source=str(source), model=model, state=state, task=make_task(state["task"], state["meta"])
    )


def model_card(served: ServedModel) -> dict[str, Any]:
    """What ``GET /models`` says of a model: name, task, input, classes or charset, metrics."""
    meta, state = served.meta, served.state
    card: dict[str, Any] = {
        "name": served.name,
        "task": state["task"],
        "model": state.get("model_name", state["config"]["model"]["name"]),
        "dataset": meta.get("name"),
        "in_chans": meta.get("in_chans"),
        "input_size": list(meta["img_size"]) if meta.get("img_size") else None,
        "metrics": _scalar_metrics(state.get("metrics") or {}),
        "num_params": state.get("num_params"),
    }
    if meta.get("class_names"):
        card["classes"] = list(meta["class_names"])
    if meta.get("charset"):
        card["charset"] = meta["charset"]
    if state["task"] == "classify":
        card["gates"] = _has_row_gates(served.model)
    if state["task"] == "segment":
        card["colors"] = _palette_hex(len(meta["class_names"]))
    return card


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's validation and test figures (numbers only; per-class lists left out)."""
    return {
        split: {k: v for k, v in metrics[split].items() if isinstance(v, (int, float))}
        for split in ("val", "test")
        if isinstance(metrics.get(split), dict)
    }


# -- uploads ------------------------------------------------------------------------------------
def decode_upload(data: bytes, *, max_pixels: int) -> Image.Image:
    """Bytes -> a fully loaded PIL image; 415 for a non-image, 413 above ``max_pixels`` (checked
    from the header, before any pixel is decoded, so a decompression bomb costs nothing)."""
    if not data:
        raise UploadError(400, "the request holds no image; send the file as the body or a multipart field")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # PIL's own guard, far above max_pixels by default
        raise UploadError(413, f"the image has too many pixels: {str(exc).split(',')[0]}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UploadError(415, "the upload is not an image PIL can read; send a PNG or JPEG") from None
    width, height = image.size
    if width * height > max_pixels:
        raise UploadError(413, f"the image has {width}x{height} pixels, more than the limit of {max_pixels:,}")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UploadError(
            415, f"the image could not be decoded ({exc.__class__.__name__}); send a PNG or JPEG"
        ) from None
    return image if image.mode in _SAVABLE_MODES else image.convert("RGB")


def _ink(image: Image.Image) -> np.ndarray:
    """Grey float array in [0, 1] with ink bright: a light background (the border's mean) is inverted."""
    grey = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 1.0 - grey if border.mean() > 0.5 else grey


def _ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(ink > 0.1)
    if rows.size == 0:
        return None
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def prepare_digit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A drawn or photographed digit -> white on black at ``size``, framed like the training digits
    (:func:`rnnvision.data.digit_frame.frame_digit`, as ``predict --preprocess mnist``); a canvas
    with nothing drawn on it yet -> an empty (black) image."""
    try:
        return frame_digit(image, size)
    except UserError:
        return Image.new("L", (size[1], size[0]))


def prepare_line(image: Image.Image, height: int) -> Image.Image:
    """A drawn line of text -> white on black, cropped to its ink with the ink 0.7 of the line
    height (digit-strings draws it 0.55-0.85) and a small margin."""
    ink = _ink(image)
    box = _ink_box(ink)
    if box is None:
        return Image.new("L", (height, height))
    top, bottom, left, right = box
    crop = Image.fromarray((ink[top:bottom, left:right] * 255).astype(np.uint8))
    scale = 0.7 * height / crop.height
    crop = crop.resize(
        (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
        Image.Resampling.BILINEAR,
        reducing_gap=2.0,
    )
    margin = height // 8
    canvas = Image.new("L", (crop.width + 2 * margin, height))
    canvas.paste(crop, (margin, (height - crop.height) // 2))
    return canvas


def _prepared(served: ServedModel, image: Image.Image, prepare: str) -> Image.Image:
    if prepare not in PREPARE_MODES:
        raise UploadError(400, f"prepare must be one of {', '.join(PREPARE_MODES)}, got {prepare!r}")
    if prepare == "digit":
        return prepare_digit(image, tuple(served.meta["img_size"]))
    if prepare == "line":
        return prepare_line(image, int(served.meta["img_size"][0]))
    return image


# -- predictions --------------------------------------------------------------------------------
def predict(
    served: ServedModel, image: Image.Image, *, filename: str = "upload", prepare: str = "none"
) -> dict[str, Any]:
    """``predict --json``'s result for one image, plus the pictures the page draws."""
    [result] = predict_batch(served, [image], filenames=[filename], prepare=[prepare])
    return result


def predict_batch(
    served: ServedModel,
    images: Sequence[Image.Image],
    *,
    filenames: Sequence[str],
    prepare: Sequence[str],
) -> list[dict[str, Any]]:
    """:func:`predict` for several images of one model, each with its own file name and ``prepare``.

    One forward pass gives both the answers and the pictures: the task's own ``predict_images``
    runs on all the images at once (segmentation: one image at a time, as its sizes differ), and
    the pictures come from what that pass computed (recorded by forward hooks, or returned by
    the recognition task's ``read_images``), never from a second pass.
    """
    for mode in set(prepare):
        check_predict(served, mode)
    ready = [
        to_8bit(_prepared(served, image, mode)) for image, mode in zip(images, prepare)
    ]  # as every image file is read
    with served.lock, torch.no_grad():
        return _PREDICTORS[served.state["task"]](served, ready, list(filenames))


def check_predict(served: ServedModel, prepare: str) -> None:
    """Refuse (400) what no image could make right: a generate model, an unknown ``prepare``."""
    if served.state["task"] == "generate":
        raise UploadError(400, f"{served.name} is a generate model; POST /complete/{served.name} completes drawn rows")
    if prepare not in PREPARE_MODES:
        raise UploadError(400, f"prepare must be one of {', '.join(PREPARE_MODES)}, got {prepare!r}")


Upload = tuple[bytes, str, str]  # (the request's bytes, the file name, prepare)


def predict_uploads(
    served: ServedModel, uploads: Sequence[Upload], *, max_pixels: int
) -> list[dict[str, Any] | UploadError]:
    """The server's batch: decode each upload, then :func:`predict_batch` the images in one pass.

    An upload that is not an image, or too large, gets its own :class:`UploadError` in its place
    and leaves the others' answers alone; a failure of the model itself raises (every request of
    the batch then fails with it).
    """
    decoded: list[Image.Image | UploadError] = []
    for body, _, _ in uploads:
        try:
            decoded.append(decode_upload(body, max_pixels=max_pixels))
        except UploadError as exc:
            decoded.append(exc)
    good = [k for k, image in enumerate(decoded) if isinstance(image, Image.Image)]
    images = [image for image in decoded if isinstance(image, Image.Image)]
    filenames, prepare = [uploads[k][1] for k in good], [uploads[k][2] for k in good]
    results = iter(predict_batch(served, images, filenames=filenames, prepare=prepare) if good else [])
    return [next(results) if isinstance(image, Image.Image) else image for image in decoded]


def _has_row_gates(model: nn.Module) -> bool:
    return isinstance(model, ReadingClassifier) and model.reading_order == "rows" and bool(model.gate_names())


@contextmanager
def _recording(*modules: nn.Module) -> Iterator[list[list[tuple[tuple[Any, ...], Any]]]]:
    """While the block runs, what each of ``modules`` takes and gives: per module, one
    (positional inputs, output) pair per forward call."""
    calls: list[list[tuple[tuple[Any, ...], Any]]] = [[] for _ in modules]
    handles = [
        module.register_forward_hook(lambda _, inputs, output, log=log: log.append((inputs, output)))
        for module, log in zip(modules, calls)
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _classify(served: ServedModel, images: list[Image.Image], names: list[str]) -> list[dict[str, Any]]:
    """Every class probability and the model input; for a row reader with gates the first layer's
    gates row by row (T = H steps) and, unidirectional, the class probabilities after each row."""
    model, meta = served.model, served.meta
    reader = cast(ReadingClassifier, model) if _has_row_gates(model) else None  # a row reader with gates
    with _recording(model) as calls, reader.record_gates() if reader else nullcontext([]) as records:
        results = served.task.predict_images(model, images, names, meta, device=_CPU)
    [((batch, *_), logits)] = calls[0]  # batch (B, C, H, W) as the model saw it, logits (B, K)
    probs = F.softmax(logits.float(), dim=1)  # (B, K), as predict_images computes them
    extras: list[dict[str, Any]] = [
        {"probabilities": _round(p), "input": encode_picture(x.mean(0))} for p, x in zip(probs, batch)
    ]
    if reader:
        [record] = records  # the first layer's gates, name -> (B, T, H), T = the image's rows
        for b, extra in enumerate(extras):
            extra["gates"] = {
                name: encode_picture(g[b], low=-1.0 if name in _TANH_GATES else 0.0) for name, g in record.gates.items()
            }
        if record.step_logits is not None:  # unidirectional: the class probabilities had the image ended after each row
            rows = F.softmax(record.step_logits.float(), dim=-1)  # (B, T, K)
            for extra, p in zip(extras, rows):
                extra["row_probabilities"] = _round(p)
    return [{**result, **extra} for result, extra in zip(results, extras)]


def _recognize(served: ServedModel, images: list[Image.Image], names: list[str]) -> list[dict[str, Any]]:
    """The model input, the image's width, and per output column its best class, its aligned class
    (the CTC forced alignment of the text) and the blank's probability."""
    task = served.task
    assert isinstance(task, RecognitionTask)
    results, inputs, details = task.read_images(served.model, images, names, served.meta, device=_CPU)
    symbols = [""] + list(served.meta["charset"])
    return [
        {
            **result,
            "input": encode_picture(x.mean(0)),
            "image_width": image.width,  # the characters' x0, x1 are pixels of the image, the input is resized
            "columns": {
                "best": [symbols[k] for k in detail["best"]],
                "alignment": [symbols[k] for k in detail["alignment"] or []],
                "blank": [round(p, 4) for p in detail["blank"]],
            },
        }
        for result, image, x, detail in zip(results, images, inputs, details)
    ]


def _segment(served: ServedModel, images: list[Image.Image], names: list[str]) -> list[dict[str, Any]]:
    """Per image (each its own pass: sizes differ): the mask (palette PNG, pixel value = class), a
    confidence map (the predicted class's probability), the legend."""
    from rnnvision.viz.segmentation import mask_to_pil

    model, meta = served.model, served.meta
    legend = [{"class": n, "color": c} for n, c in zip(meta["class_names"], _palette_hex(len(meta["class_names"])))]
    answers = []
    for image, name in zip(images, names):
        with _recording(model) as calls:
            [result] = served.task.predict_images(model, [image], [name], meta, device=_CPU)
        if len(calls[0]) != 1:
            raise UserError(
                f"{served.name} runs in tiles (a fixed input size); serve draws segmenters that read a whole image"
            )
        [(_, logits)] = calls[0]  # (1, K, h, w)
        confidence, classes = F.softmax(logits.float(), dim=1)[0].max(dim=0)  # (h, w) each
        width, height = image.size
        mask = mask_to_pil(
            np.asarray(
                Image.fromarray(classes.numpy().astype(np.uint8)).resize((width, height), Image.Resampling.NEAREST)
            )
        )
        if meta["class_names"][0] == "background":
            mask.info["transparency"] = 0  # the scene shows through where nothing was found
        conf = Image.fromarray((confidence.numpy() * 255).round().astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR
        )
        answers.append(
            {
                **result,
                "mask_png": _png_data_url(mask),
                "confidence_png": _png_data_url(conf),
                "mean_confidence": round(float(confidence.mean()), 6),
                "legend": legend,
            }
        )
    return answers


_CPU = torch.device("cpu")
_TANH_GATES = ("cell", "candidate")  # LSTM's candidate cell, GRU's candidate: in [-1, 1]; the other gates in [0, 1]
_PREDICTORS = {"classify": _classify, "recognize": _recognize, "segment": _segment}


def complete(
    served: ServedModel,
    image: Image.Image,
    *,
    known_rows: int | None = None,
    samples: int = 4,
    seed: int = 0,
    prepare: str = "none",
) -> dict[str, Any]:
    """Keep the top ``known_rows`` rows of ``image`` (at the model's size) and sample the rest
    ``samples`` times; returns the completions with each pixel's probability."""
    from rnnvision.tasks.generate import images_tensor

    if served.state["task"] != "generate":
        raise UploadError(400, f"{served.name} is a {served.state['task']} model; complete needs a generate model")
    if not 1 <= samples <= 8:
        raise UploadError(400, f"samples must lie in [1, 8], got {samples}")
    model = cast("AutoregressiveImageModel", served.model)  # a generate task's model
    height = model.img_size[0]
    rows = height // 2 if known_rows is None else known_rows
    if not 0 < rows < height:
        raise UploadError(400, f"known_rows must lie in [1, {height - 1}], got {rows}")
    image = to_8bit(_prepared(served, image, prepare))
    known_image = images_tensor(model, [image])  # (1, C, H, W) at the model's size and levels
    canvas = known_image.repeat(samples, 1, 1, 1)  # (S, C, H, W)
    known = torch.zeros_like(canvas, dtype=torch.bool)
    known[:, :, :rows] = True
    generator = torch.Generator().manual_seed(seed)
    with served.lock:
        completed, log_probs = model.autoregress(canvas, known, generator=generator)
    chosen = log_probs.exp()  # p(the value drawn | the pixels before it)
    on = torch.where(completed > 0.5, chosen, 1 - chosen) if model.levels == 2 else chosen
    return {
        "known_rows": rows,
        "input": encode_picture(known_image[0].mean(0)),
        "samples": [
            {
                "image": encode_picture(completed[s].mean(0)),
                "probability": encode_picture(on[s].mean(0)),
                "nll_nats": round(float(-log_probs[s, :, rows:].sum()), 4),
            }
            for s in range(samples)
        ],
        "probability_meaning": "p(pixel on)" if model.levels == 2 else "p(the drawn value)",
    }


# -- pictures -----------------------------------------------------------------------------------
def encode_picture(values: torch.Tensor, *, low: float = 0.0, high: float = 1.0) -> dict[str, Any]:
    """A 2-D array of values in [``low``, ``high``] as the API sends it: one byte per value,
    ``q = round(255 (v - low) / (high - low))``, row-major, base64-encoded.

    Returns ``{"shape": [H, W], "low": low, "high": high, "uint8": "<base64>"}``;
    :func:`decode_picture` (and the page's ``decodePicture``) give back the values to within
    ``(high - low) / 510``. A 28 x 128 gate map is 4.8 KB this way instead of about 25 KB of JSON
    numbers, and costs no float formatting.
    """
    scaled = (values.detach().float().cpu().clamp(low, high) - low) * (255.0 / (high - low))  # (H, W) in [0, 255]
    data = scaled.round().to(torch.uint8).numpy().tobytes()
    return {"shape": list(values.shape), "low": low, "high": high, "uint8": base64.b64encode(data).decode("ascii")}


def decode_picture(picture: dict[str, Any]) -> np.ndarray:
    """The values of an :func:`encode_picture` dict: a float64 array of its ``shape``."""
    q = np.frombuffer(base64.b64decode(picture["uint8"]), dtype=np.uint8).reshape(picture["shape"])
    return picture["low"] + (picture["high"] - picture["low"]) * (q / 255.0)


# -- helpers ------------------------------------------------------------------------------------
def _round(values: torch.Tensor, digits: int = 4) -> Any:
    return np.round(values.detach().double().cpu().numpy(), digits).tolist()


def _png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _palette_hex(count: int) -> list[str]:
    from rnnvision.viz.segmentation import PALETTE

    return ["#" + "".join(f"{int(v):02x}" for v in PALETTE[k]) for k in range(count)]
