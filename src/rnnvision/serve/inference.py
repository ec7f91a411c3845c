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
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import nn

from rnnvision.data.text import word_tensor
from rnnvision.data.transforms import pil_to_tensor, to_8bit
from rnnvision.errors import UserError
from rnnvision.ops.ctc import ctc_forced_alignment
from rnnvision.tasks import Task, make_task
from rnnvision.tasks.base import to_device

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
        raise UserError(f"{source}: serve needs a checkpoint (it draws the model's gates and columns); "
                        "an .onnx file runs with rnnvision predict")
    model, state, _ = load_source(source, device="cpu")
    return ServedModel(name=name, source=str(source), model=model, state=state, task=make_task(state["task"], state["meta"]))


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
        for split in ("val", "test") if isinstance(metrics.get(split), dict)
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
        raise UploadError(415, f"the image could not be decoded ({exc.__class__.__name__}); send a PNG or JPEG") from None
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
    """A drawn or photographed digit -> white on black at ``size``, framed like the training digits.

    MNIST-sized models (> 16 pixels): the ink fits a box of 20/28 of the size and its centre of
    mass goes to the middle (LeCun et al. 1998). Small images (the 8 x 8 digits): the ink fills
    the height, centred.
    """
    ink = _ink(image)
    box = _ink_box(ink)
    height, width = size
    if box is None:
        return Image.new("L", (width, height))
    top, bottom, left, right = box
    crop = ink[top:bottom, left:right]
    fit = (20 / 28) if min(size) > 16 else 1.0
    scale = min(fit * height / crop.shape[0], fit * width / crop.shape[1])
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    glyph = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR, reducing_gap=2.0))
    if min(size) > 16:
        weights = glyph.astype(np.float64) + 1e-9
        cy = (weights.sum(1) * np.arange(h)).sum() / weights.sum()
        cx = (weights.sum(0) * np.arange(w)).sum() / weights.sum()
        y0, x0 = round(height / 2 - cy - 0.5), round(width / 2 - cx - 0.5)
    else:
        y0, x0 = (height - h) // 2, (width - w) // 2
    canvas = np.zeros((height, width), dtype=np.uint8)
    y0, x0 = min(max(y0, 0), height - h), min(max(x0, 0), width - w)
    canvas[y0 : y0 + h, x0 : x0 + w] = glyph
    return Image.fromarray(canvas)


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
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BILINEAR, reducing_gap=2.0)
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
def predict(served: ServedModel, image: Image.Image, *, filename: str = "upload", prepare: str = "none") -> dict[str, Any]:
    """``predict --json``'s result for one image, plus the pictures the page draws."""
    task = served.state["task"]
    if task == "generate":
        raise UploadError(400, f"{served.name} is a generate model; POST /complete/{served.name} completes drawn rows")
    image = to_8bit(_prepared(served, image, prepare))  # as every image file is read
    with served.lock, torch.no_grad():
        [result] = served.task.predict_images(served.model, [image], [filename], served.meta, device=torch.device("cpu"))
        extra = _EXTRAS[task](served, image)
    return {**result, **extra}


def _has_row_gates(model: nn.Module) -> bool:
    rnn = getattr(model, "rnn", None)
    return hasattr(model, "gates") and getattr(model, "reader", None) == "rows" and bool(getattr(rnn, "gate_names", ()))


def _classify_extras(served: ServedModel, upload: Image.Image) -> dict[str, Any]:
    model, meta = served.model, served.meta
    image = pil_to_tensor(upload, channels=meta["in_chans"], size=tuple(meta["img_size"]))[None]  # (1, C, H, W)
    probs = F.softmax(model(image).float(), dim=1)[0]  # (K,)
    extra: dict[str, Any] = {"probabilities": _round(probs), "input": _round(image[0].mean(0))}
    if _has_row_gates(model):
        outputs, _, gates = model.rnn(model.to_sequence(image), return_gates=True)  # (1, T, D*H); name -> (L, D, 1, T, H)
        extra["gates"] = {name: _round(g[0, 0, 0]) for name, g in gates.items()}  # (T = image rows, H)
        if not model.rnn.bidirectional:  # the class probabilities had the image ended after each row
            extra["row_probabilities"] = _round(F.softmax(model.forward_head(outputs[0]).float(), dim=-1))  # (T, K)
    return extra


def _recognize_extras(served: ServedModel, upload: Image.Image) -> dict[str, Any]:
    model, meta, task = served.model, served.meta, served.task
    height, max_width = meta["img_size"]
    image = word_tensor(upload, channels=meta["in_chans"], height=height, max_width=max_width)  # (C, H, W)
    batch = task.collate([(image, "")])
    log_probs, lengths = task.log_probs(model, to_device(batch, torch.device("cpu")))
    lp = log_probs[0, : int(lengths[0])]  # (T, K)
    text = task.decode(log_probs, lengths)[0]
    try:
        alignment, _ = ctc_forced_alignment(lp, task.encode(text))
    except ValueError:  # cannot happen for a greedy reading; kept for lexicon decoders
        alignment = []
    symbols = [""] + list(meta["charset"])
    return {
        "input": _round(image.mean(0)),
        "image_width": upload.width,  # the characters' x0, x1 are pixels of the image, the input is resized
        "columns": {
            "best": [symbols[k] for k in lp.argmax(-1).tolist()],
            "alignment": [symbols[k] for k in alignment],
            "blank": _round(lp[:, 0].exp()),
        },
    }


def _segment_extras(served: ServedModel, upload: Image.Image) -> dict[str, Any]:
    model, meta = served.model, served.meta
    original = pil_to_tensor(upload, channels=meta["in_chans"])
    size = tuple(meta["img_size"]) if meta.get("img_size") else None
    image = pil_to_tensor(upload, channels=meta["in_chans"], size=size) if size else original
    probs = F.softmax(model(image[None]).float(), dim=1)[0]  # (K, h, w)
    confidence, classes = probs.max(dim=0)
    height, width = original.shape[-2:]
    mask = Image.fromarray(classes.numpy().astype(np.uint8)).resize((width, height), Image.NEAREST)
    from rnnvision.viz.segmentation import mask_to_pil

    conf = Image.fromarray((confidence.numpy() * 255).round().astype(np.uint8)).resize((width, height), Image.BILINEAR)
    mask = mask_to_pil(np.asarray(mask))
    if meta["class_names"][0] == "background":
        mask.info["transparency"] = 0  # the scene shows through where nothing was found
    return {
        "mask_png": _png_data_url(mask),
        "confidence_png": _png_data_url(conf),
        "mean_confidence": round(float(confidence.mean()), 6),
        "legend": [{"class": n, "color": c} for n, c in zip(meta["class_names"], _palette_hex(len(meta["class_names"])))],
    }


_EXTRAS = {"classify": _classify_extras, "recognize": _recognize_extras, "segment": _segment_extras}


def complete(
    served: ServedModel, image: Image.Image, *, known_rows: int | None = None, samples: int = 4, seed: int = 0,
    prepare: str = "none",
) -> dict[str, Any]:
    """Keep the top ``known_rows`` rows of ``image`` (at the model's size) and sample the rest
    ``samples`` times; returns the completions with each pixel's probability."""
    from rnnvision.tasks.generate import images_tensor

    if served.state["task"] != "generate":
        raise UploadError(400, f"{served.name} is a {served.state['task']} model; complete needs a generate model")
    if not 1 <= samples <= 8:
        raise UploadError(400, f"samples must lie in [1, 8], got {samples}")
    model = served.model
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
        "input": _round(known_image[0].mean(0)),
        "samples": [
            {"image": _round(completed[s].mean(0)), "probability": _round(on[s].mean(0)),
             "nll_nats": round(float(-log_probs[s, :, rows:].sum()), 4)}
            for s in range(samples)
        ],
        "probability_meaning": "p(pixel on)" if model.levels == 2 else "p(the drawn value)",
    }


# -- helpers ------------------------------------------------------------------------------------
def _round(values: torch.Tensor, digits: int = 4) -> Any:
    return np.round(values.detach().double().cpu().numpy(), digits).tolist()


def _png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _palette_hex(count: int) -> list[str]:
    from rnnvision.viz.segmentation import PALETTE

    return ["#%02x%02x%02x" % tuple(int(v) for v in PALETTE[k]) for k in range(count)]

