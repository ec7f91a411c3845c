"""Evaluation: :func:`evaluate` (a model's metrics on a dataset, what the trainer validates with)
and :func:`evaluate_checkpoint` (a saved checkpoint or shipped weights on a split: ``rnnvision eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from rnnvision.data import build_dataset, get_dataset_entry
from rnnvision.data.base import InfoDataset, dataset_meta
from rnnvision.engine.distributed import DistContext, all_reduce_sums, autocast, pick_device
from rnnvision.errors import UserError
from rnnvision.tasks import Task, make_task, to_device


def evaluate(
    model: nn.Module,
    dataset: InfoDataset,
    task: Task,
    *,
    batch_size: int,
    device: torch.device,
    ctx: DistContext | None = None,
    bf16: bool = False,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metrics of ``model`` on ``dataset`` (each DDP process takes every world_size-th item)."""
    rank, world = (ctx.rank, ctx.world_size) if ctx else (0, 1)
    shard = Subset(dataset, range(rank, len(dataset), world))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, collate_fn=task.collate)
    sums: dict[str, torch.Tensor] = {}
    model.eval()
    with torch.no_grad(), autocast(device, bf16):
        for batch in loader:
            for key, value in task.eval_stats(model, to_device(batch, device)).items():
                value = value.detach()
                sums[key] = sums[key] + value if key in sums else value
    if ctx is not None:
        sums = all_reduce_sums(sums, ctx)
    return task.finalize(sums), sums


def evaluate_checkpoint(
    path: str | Path,
    *,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    download: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    out_dir: str | Path | None = None,
    mirror: bool = False,
) -> dict[str, Any]:
    """Metrics of a checkpoint (or shipped weights, by name) on a split of its own dataset, or of another
    one of the same task.

    With ``out_dir`` the task's pictures of the result go there too (the folder is created if
    missing; for segmentation: confusion.png normalised per true class, class_iou.png, segmentations.png).
    ``mirror`` (segmentation models trained with ``data.hflip``): each image's logits averaged
    with its mirror image's (:class:`~rnnvision.tasks.segment.MirrorAveraged`).
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    torch_device = pick_device(device)
    from rnnvision.weights.loading import resolve  # weights -> engine.checkpoint -> engine: import at call time

    model, state = resolve(path, device=torch_device)
    if mirror:
        if state["task"] != "segment":
            raise UserError(f"--mirror averages segmentation masks; {path} is a {state['task']} model")
        if not state["config"]["data"].get("hflip"):
            raise UserError(
                f"--mirror averages with mirror images, and {path} was trained without them (data.hflip off; "
                "a mirrored digit or letter is another shape): train with data.hflip: true to use it"
            )
        from rnnvision.tasks.segment import MirrorAveraged

        model = MirrorAveraged(model)
    return evaluate_loaded(
        model,
        state,
        source=str(path),
        dataset=dataset,
        split=split,
        data_dir=data_dir,
        download=download,
        batch_size=batch_size,
        device=torch_device,
        out_dir=out_dir,
    )


def evaluate_loaded(
    model: nn.Module,
    state: dict[str, Any],
    *,
    source: str,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    download: bool = False,
    batch_size: int = 256,
    device: torch.device,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_checkpoint` for a model already loaded with its payload ``state`` (from ``source``)."""
    trained_on = dict(state["config"]["data"])
    name = dataset or trained_on.pop("name")
    trained_on.pop("name", None)
    entry = get_dataset_entry(name)
    if entry.task != state["task"]:
        raise UserError(f"dataset {name!r} is for {entry.task}; {source} is a {state['task']} model")
    options = {k: v for k, v in trained_on.items() if k in entry.options()} if dataset else trained_on
    data = build_dataset(name, split=split, root=data_dir, download=download, **options)
    meta = dataset_meta(data.info)
    _check_compatible(state["meta"], meta, name, task=state["task"])
    task = make_task(state["task"], state["meta"])
    metrics, stats = evaluate(model, data, task, batch_size=batch_size, device=device)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        task.write_report(model, data, stats, Path(out_dir), device=device)
    return metrics


def _check_compatible(trained: dict[str, Any], other: dict[str, Any], name: str, *, task: str) -> None:
    """Refuse a dataset the model cannot read: other channels, image size (classify, generate) or text height."""
    if trained.get("in_chans") != other.get("in_chans"):
        raise UserError(
            f"dataset {name!r} has {other.get('in_chans')}-channel images, the model was trained on {trained.get('in_chans')}"
        )
    mine, theirs = trained.get("img_size"), other.get("img_size")
    if mine and theirs:
        mine, theirs = tuple(mine), tuple(theirs)
        if task == "recognize" and mine[0] != theirs[0]:
            raise UserError(
                f"dataset {name!r} has text lines {theirs[0]} pixels high, the model reads {mine[0]}; set data.height"
            )
        if task in ("classify", "generate") and mine != theirs:
            raise UserError(
                f"dataset {name!r} has {theirs[0]}x{theirs[1]} images, the model was trained on {mine[0]}x{mine[1]}; "
                "evaluate it on data of its own size"
            )
    if trained.get("class_names") and len(trained["class_names"]) != len(other.get("class_names", ())):
        raise UserError(
            f"dataset {name!r} has {len(other.get('class_names', ()))} classes, the model was trained on "
            f"{len(trained['class_names'])}"
        )
