"""Text recognition: CRNN inference latency per word image (batch 1 and 32, greedy CTC decoding
included), a checkpoint's test accuracy per decoding, and its wrong readings by kind."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from rnnvision.bench.timing import BenchRow, time_call
from rnnvision.data import build_dataset
from rnnvision.data.base import InfoDataset
from rnnvision.engine.evaluation import evaluate
from rnnvision.models import create_model
from rnnvision.models.crnn import CRNN
from rnnvision.ops.ctc import ctc_greedy_decode
from rnnvision.tasks.recognize import RecognitionTask


def bench_crnn_latency(
    *,
    size: str,
    batch_sizes: tuple[int, ...] = (1, 32),
    width: int = 100,
    height: int = 32,
    num_classes: int = 37,
    device: torch.device | str = "cpu",
    model: CRNN | None = None,
) -> list[BenchRow]:
    """Seconds per batch of ``height x width`` images through CRNN ``size`` and greedy decoding.

    ``ratio`` is the time per image relative to batch 1 in the same run (below 1: batching pays).
    Pass ``model`` to time a trained one (its own size and classes).
    """
    device = torch.device(device)
    torch.manual_seed(0)
    model = (
        (model or cast(CRNN, create_model("crnn", variant=size, num_classes=num_classes, img_height=height)))
        .to(device)
        .eval()
    )
    params = sum(p.numel() for p in model.parameters())
    rows: list[BenchRow] = []
    single = None
    for batch in batch_sizes:
        images = torch.rand(batch, model.in_chans, height, width, device=device)
        widths = torch.full((batch,), width, dtype=torch.long, device=device)

        def call() -> object:
            with torch.no_grad():
                return ctc_greedy_decode(model(images, widths), model.output_lengths(widths))

        seconds = time_call(call, device=device)
        per_image = seconds / batch
        single = single or per_image
        rows.append(
            BenchRow(
                group="CRNN latency",
                name=f"{size} batch {batch}",
                shape=f"{batch}x{model.in_chans}x{height}x{width}",
                seconds=seconds,
                baseline=f"{size} batch {batch_sizes[0]} per image",
                ratio=per_image / single,
                device=str(device),
                note=f"{per_image * 1e3:.2f} ms per image, {params / 1e6:.1f}M parameters",
            )
        )
    return rows


def checkpoint_test_split(state: dict[str, Any], *, data_dir: str | None = None) -> tuple[str, InfoDataset]:
    """The dataset name and the test split (all of it) of the data a checkpoint (payload ``state``) was trained on."""
    options = dict(state["config"]["data"])
    name = options.pop("name")
    return name, build_dataset(name, split="test", root=data_dir, **options)


def decoding_accuracy(
    model: nn.Module,
    charset: str,
    test: InfoDataset,
    *,
    beam_width: int = 0,
    batch_size: int = 64,
) -> dict[str, tuple[dict[str, Any], float]]:
    """Per decoding (``"greedy"``, and ``"beam <beam_width>"`` with a beam width): the metrics of
    ``model`` on ``test`` (lexicon-free) and the seconds the evaluation took, on the CPU."""
    results = {}
    for label, beam in [("greedy", 0)] + ([(f"beam {beam_width}", beam_width)] if beam_width else []):
        task = RecognitionTask(charset, beam_width=beam)
        started = time.perf_counter()
        metrics, _ = evaluate(model, test, task, batch_size=batch_size, device=torch.device("cpu"))
        results[label] = (metrics, time.perf_counter() - started)
    return results


@dataclass
class ReadingErrors:
    """The wrong greedy readings of some test items: ``kinds`` counts "misread" (the length right),
    "lost" and "gained" (characters); ``wrong`` and ``total`` are per text length; ``examples``
    are "truth -> read" in the order read (batches sorted by width)."""

    count: int
    kinds: Counter[str] = field(default_factory=Counter)
    wrong: Counter[int] = field(default_factory=Counter)
    total: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


def reading_errors(
    model: nn.Module, charset: str, test: InfoDataset, *, limit: int, batch_size: int = 64
) -> ReadingErrors:
    """Greedy readings of the first ``limit`` items of ``test``, the wrong ones sorted by kind and text length."""
    task = RecognitionTask(charset)
    errors = ReadingErrors(count=min(limit, len(test)))
    with torch.no_grad():
        for start in range(0, errors.count, batch_size):
            batch = task.collate([test[i] for i in range(start, min(errors.count, start + batch_size))])
            for truth, read in zip(batch["texts"], task.decode(*task.log_probs(model, batch))):  # width-sorted
                errors.total[len(truth)] += 1
                if read != truth:
                    errors.wrong[len(truth)] += 1
                    errors.kinds[
                        "misread" if len(read) == len(truth) else "lost" if len(read) < len(truth) else "gained"
                    ] += 1
                    errors.examples.append(f"{truth} -> {read}")
    return errors
