"""Prediction at scale: what ``rnnvision predict`` and :func:`rnnvision.predict` call.

One path for every caller: a model source becomes a model in :func:`load_source`; inputs
(files, folders, globs; or, from Python, PIL images, arrays and paths) become PIL images read by
the one image reader (:func:`rnnvision.data.transforms.open_image`, or :func:`array_to_image`
with the same conversions); the task's ``predict_images`` runs them ``batch_size`` at a time.
An input that cannot be read is one failure (its name and a one-line reason) and the others are
still predicted; the results keep the order of the inputs.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from rnnvision.data.digit_frame import frame_digit
from rnnvision.data.transforms import IMAGE_SUFFIXES, open_image, to_8bit
from rnnvision.engine.distributed import pick_device
from rnnvision.errors import UserError
from rnnvision.files import atomic_write_text
from rnnvision.outputs import check_output_file
from rnnvision.tasks import Task, make_task

ImageInput = Image.Image | np.ndarray | str | os.PathLike
Preprocess = Literal["none", "mnist"]
PREPROCESS: tuple[str, ...] = typing.get_args(Preprocess)
TABLE_SUFFIXES = (".jsonl", ".csv")  # ``--out`` with one of these is a results table, anything else a folder
EXPLAINED = 16  # ``--explain`` draws the first this many images


def load_source(
    source: str | os.PathLike, *, device: str | torch.device = "auto"
) -> tuple[nn.Module, dict[str, Any], torch.device]:
    """The one place a model source becomes a model: a checkpoint, shipped weights by name, or an
    exported ``.onnx`` file (run by onnxruntime on the CPU). Returns (model in eval mode, its
    payload, the device it is on)."""
    torch_device = device if isinstance(device, torch.device) else pick_device(device)
    path = Path(source)
    if path.suffix == ".onnx":
        from rnnvision.export.onnx import load_onnx

        onnx_model, onnx_state = load_onnx(path)
        return onnx_model, onnx_state, torch.device("cpu")
    from rnnvision.weights.loading import resolve

    model, state = resolve(source if isinstance(source, str) else Path(source), device=torch_device)
    return model, state, torch_device


# -- inputs -------------------------------------------------------------------------------------
def expand_inputs(inputs: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files, folders and glob patterns -> (the image files, in order, each once; (input, problem) pairs).

    A file is taken whatever its suffix (reading it decides). A folder is searched recursively
    for files with an image suffix (:data:`IMAGE_SUFFIXES`, any case), hidden files and folders
    (``.name``) skipped, in sorted order. An argument that is not an existing path and holds
    ``*``, ``?`` or ``[`` is expanded as a glob (``**`` recursive), for shells that do not;
    what it matches is taken as above, except that matched files need an image suffix too. A
    missing path, a glob that matches no image and a folder without images are problems, each
    said in one line.
    """
    files: list[str] = []
    seen: set[str] = set()
    problems: list[tuple[str, str]] = []

    def add(path: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = list(_images_under(path))
            if not found:
                problems.append((item, f"folder {item} holds no image files ({', '.join(IMAGE_SUFFIXES)})"))
            for file in found:
                add(file)
        elif path.exists():
            add(str(path))
        elif not glob.has_magic(item):
            problems.append((item, f"no such file or folder: {item}"))
        else:
            matched = [
                file
                for match in sorted(glob.glob(os.path.expanduser(item), recursive=True))
                for file in (
                    _images_under(Path(match)) if os.path.isdir(match) else [match] if _is_image_name(match) else []
                )
            ]
            if not matched:
                problems.append((item, f"{item} matches no image file"))
            for file in matched:
                add(file)
    return files, problems


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not Path(name).name.startswith(".")


def _images_under(folder: Path) -> Iterator[str]:
    for root, dirs, names in os.walk(folder):  # symlinked folders are not followed: no cycles
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if _is_image_name(name) and os.path.isfile(os.path.join(root, name)):
                yield os.path.join(root, name)


def array_to_image(array: np.ndarray) -> Image.Image:
    """A numpy image -> PIL, by the rules image files follow (``open_image``).

    (H, W) is grey, (H, W, 1) too, (H, W, 3) RGB and (H, W, 4) RGBA (alpha composited as for
    files). ``uint8`` is taken as is, ``uint16`` scaled by its bit depth, ``bool`` as 0/255 and
    floats as values in [0, 1].
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or 0 in a.shape:
        raise UserError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = np.rint(a / 65535.0 * 255.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise UserError("a float image array must hold values in [0, 1]")
        a = np.rint(a * 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise UserError(f"an image array must be uint8, uint16, bool or float, got {a.dtype}")
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[2] == 3 else "RGBA")
    return to_8bit(Image.fromarray(np.ascontiguousarray(a), mode))


def _read(item: ImageInput) -> Image.Image:
    if isinstance(item, Image.Image):
        return to_8bit(item)
    if isinstance(item, np.ndarray):
        return array_to_image(item)
    if isinstance(item, (str, os.PathLike)):
        return open_image(Path(item))
    raise UserError(f"an image must be a PIL image, a numpy array or a path, got {type(item).__name__}")


def _reader(preprocess: str, state: dict[str, Any]) -> Callable[[ImageInput], Image.Image]:
    """The function that reads one input for ``preprocess`` (see :func:`run_predictions`)."""
    if preprocess not in PREPROCESS:
        raise UserError(f"--preprocess must be one of {', '.join(PREPROCESS)}, got {preprocess!r}")
    if preprocess == "none":
        return _read
    meta = state["meta"]
    if state["task"] != "classify" or meta.get("in_chans") != 1 or not meta.get("img_size"):
        raise UserError(
            "--preprocess mnist frames a digit for a 1-channel classifier; this model is a "
            f"{meta.get('in_chans')}-channel {state['task']} model"
        )
    size = (int(meta["img_size"][0]), int(meta["img_size"][1]))
    return lambda item: frame_digit(_read(item), size)


# -- running ------------------------------------------------------------------------------------
@dataclass
class PredictionRun:
    """What a prediction over many inputs gave.

    ``results`` has one dict per input, in input order: the task's result, or for an input that
    could not be read ``{"file": name, "error": reason}``.
    """

    task: Task
    results: list[dict[str, Any]] = field(default_factory=list)
    explained: Path | None = None

    @property
    def predictions(self) -> list[dict[str, Any]]:
        return [r for r in self.results if "error" not in r]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if "error" in r]


def run_predictions(
    model: nn.Module,
    state: dict[str, Any],
    items: Sequence[ImageInput],
    names: Sequence[str],
    *,
    device: torch.device,
    batch_size: int = 64,
    explain: str | os.PathLike | None = None,
    strict: bool = False,
    unfound: Sequence[tuple[str, str]] = (),
    on_failure: Callable[[str, str], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    preprocess: Preprocess = "none",
    **options: Any,
) -> PredictionRun:
    """Predict ``items`` (named ``names``) ``batch_size`` at a time with a loaded model.

    Args:
        items: PIL images, numpy arrays or image files.
        explain: a picture of the first :data:`EXPLAINED` predictions (recognition).
        strict: raise the first input that cannot be read instead of recording it.
        unfound: (input, problem) pairs of inputs that named no image (:func:`expand_inputs`):
            failures, first in the results.
        on_failure: called with (name, reason) for each input that cannot be read, when it is met.
        on_batch: called with (inputs done, inputs in all) after each batch.
        preprocess: ``"mnist"`` frames each image as MNIST's digits were framed
            (:func:`rnnvision.data.digit_frame.frame_digit`: a photo of a dark digit on paper),
            for 1-channel classifiers; ``"none"`` reads images as they are.
        options: the task's predict options (``topk``, ``out_dir``, ``beam_width``, ``lexicon``).

    Returns:
        The results in input order (:class:`PredictionRun`).
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    task = make_task(state["task"], state["meta"])
    meta = state["meta"]
    read = _reader(preprocess, state)
    prepared = task.prepare_predict(list(names), meta, explain=explain, **options)
    run = PredictionRun(task=task, results=[{"file": name, "error": problem} for name, problem in unfound])
    if on_failure is not None:
        for unfound_item, problem in unfound:
            on_failure(unfound_item, problem)
    shown: tuple[list[Image.Image], list[str]] = ([], [])
    for start in range(0, len(items), batch_size):
        images: list[Image.Image] = []
        good: list[str] = []
        slots: list[dict[str, Any] | None] = []
        for item, name in zip(items[start : start + batch_size], names[start : start + batch_size]):
            try:
                images.append(read(item))
            except UserError as exc:
                if strict:
                    raise
                slots.append({"file": name, "error": str(exc)})
                if on_failure is not None:
                    on_failure(name, str(exc))
                continue
            good.append(name)
            slots.append(None)
        predicted = iter(task.predict_images(model, images, good, meta, device=device, **prepared) if images else [])
        run.results += [slot if slot is not None else next(predicted) for slot in slots]
        if explain and len(shown[0]) < EXPLAINED:
            room = EXPLAINED - len(shown[0])
            shown[0].extend(images[:room])
            shown[1].extend(good[:room])
        if on_batch is not None:
            on_batch(min(start + batch_size, len(items)), len(items))
    if explain and shown[0]:
        run.explained = task.explain(model, shown[0], shown[1], meta, Path(explain), device=device, **prepared)
    return run


def predict(
    model: str | os.PathLike | tuple[nn.Module, dict[str, Any]],
    images: Iterable[ImageInput],
    *,
    names: Sequence[str] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    **options: Any,
) -> list[dict[str, Any]]:
    """Predict images as ``rnnvision predict --json`` does, with the same preprocessing.

    Args:
        model: a model source (a checkpoint or an ``.onnx`` file), or ``(model, payload)`` as
            :func:`rnnvision.load` returns.
        images: PIL images, numpy arrays (:func:`array_to_image`) or image files.
        names: the ``file`` of each result (default: the path, or ``image<i>``).
        options: ``topk`` (classify), ``beam_width`` and ``lexicon`` (recognize), ``out_dir`` (segment),
            ``preprocess`` (see :func:`run_predictions`).

    Returns:
        One dict per image, in order, as in ``predict --json``'s ``predictions``.

    Raises:
        UserError: an image that cannot be read, or an option the task does not have.
    """
    if isinstance(images, (str, os.PathLike, np.ndarray, Image.Image)):
        raise UserError("images must be a list (of PIL images, arrays or paths); wrap a single image in [ ]")
    items = list(images)
    if isinstance(model, tuple):
        module, state = model
        torch_device = next(module.parameters(), torch.empty(0)).device  # an OnnxModel has none: the CPU
    else:
        module, state, torch_device = load_source(model, device=device)
    labels = (
        list(names)
        if names is not None
        else [str(item) if isinstance(item, (str, os.PathLike)) else f"image{i}" for i, item in enumerate(items)]
    )
    if len(labels) != len(items):
        raise UserError(f"{len(labels)} names for {len(items)} images")
    run = run_predictions(
        module, state, items, labels, device=torch_device, batch_size=batch_size, strict=True, **options
    )
    return run.results


def predict_inputs(
    source: str | os.PathLike,
    inputs: Sequence[str],
    *,
    device: str = "auto",
    batch_size: int = 64,
    on_failure: Callable[[str, str], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    **options: Any,
) -> PredictionRun:
    """Load ``source`` and predict the image files that ``inputs`` (files, folders, globs) name.

    An input that names nothing (:func:`expand_inputs`) and a file that cannot be read are
    failures in the results, passed to ``on_failure`` as they are met; the others are predicted.
    """
    model, state, torch_device = load_source(source, device=device)
    files, unfound = expand_inputs(inputs)
    return run_predictions(
        model,
        state,
        files,
        files,
        device=torch_device,
        batch_size=batch_size,
        unfound=unfound,
        on_failure=on_failure,
        on_batch=on_batch,
        **options,
    )


# -- results tables -----------------------------------------------------------------------------
def write_results(path: str | os.PathLike, results: list[dict[str, Any]]) -> Path:
    """Write one row per result, atomically: JSON Lines (``.jsonl``) or CSV (``.csv``, a column per
    key in order of first use; lists and dicts as compact JSON in their cell)."""
    target = check_output_file(Path(path))
    suffix = target.suffix.lower()
    if suffix == ".jsonl":
        text = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    elif suffix == ".csv":
        columns = list(dict.fromkeys(key for result in results for key in result))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for result in results:
            writer.writerow(
                {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in result.items()}
            )
        text = buffer.getvalue()
    else:
        raise UserError(f"--out {target}: a results table is .jsonl or .csv, not {suffix or '(no suffix)'}")
    atomic_write_text(target, text)
    return target
