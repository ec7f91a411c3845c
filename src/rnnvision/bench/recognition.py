"""CRNN inference latency per word image, at batch 1 and batch 32, greedy CTC decoding included."""

from __future__ import annotations

import torch

from rnnvision.bench.timing import BenchRow, time_call
from rnnvision.models import create_model
from rnnvision.ops.ctc import ctc_greedy_decode


def bench_crnn_latency(
    *, size: str, batch_sizes: tuple[int, ...] = (1, 32), width: int = 100, height: int = 32, num_classes: int = 37,
    device: torch.device | str = "cpu", model: torch.nn.Module | None = None,
) -> list[BenchRow]:
    """Seconds per batch of ``height x width`` images through CRNN ``size`` and greedy decoding.

    ``ratio`` is the time per image relative to batch 1 in the same run (below 1: batching pays).
    Pass ``model`` to time a trained one (its own size and classes).
    """
    device = torch.device(device)
    torch.manual_seed(0)
    model = (model or create_model("crnn", variant=size, num_classes=num_classes, img_height=height)).to(device).eval()
    params = sum(p.numel() for p in model.parameters())
    rows: list[BenchRow] = []
    single = None
    for batch in batch_sizes:
        images = torch.rand(batch, model.in_chans, height, width, device=device)  # type: ignore[call-overload]
        widths = torch.full((batch,), width, dtype=torch.long, device=device)

        def call() -> object:
            with torch.no_grad():
                return ctc_greedy_decode(model(images, widths), model.output_lengths(widths))  # type: ignore[operator]

        seconds = time_call(call, device=device)
        per_image = seconds / batch
        single = single or per_image
        rows.append(BenchRow(
            group="CRNN latency", name=f"{size} batch {batch}", shape=f"{batch}x{model.in_chans}x{height}x{width}",
            seconds=seconds, baseline=f"{size} batch {batch_sizes[0]} per image", ratio=per_image / single,
            device=str(device), note=f"{per_image * 1e3:.2f} ms per image, {params / 1e6:.1f}M parameters",
        ))
    return rows
