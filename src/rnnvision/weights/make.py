"""A training run -> a shipped weights file and its catalogue entry (``benchmarks/make_weights.py``).

The run's ``best.pt`` is stored in the first of float16, int8 (weights only, one scale per row:
:mod:`rnnvision.weights.store`) and float32 that fits in
:data:`~rnnvision.weights.catalogue.MAX_FILE_BYTES` and keeps its test metric: the float32 weights
and each candidate (widened back, exactly as :func:`rnnvision.weights.resolve` loads them) are
evaluated on the full test split, and a candidate is refused when it loses more than
:func:`~rnnvision.weights.catalogue.metric_tolerance` (0.1 point, 0.2 nats) or does not fit.
The entry records the metric measured on the stored weights, and the float32 one beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnvision.engine.checkpoint import load_checkpoint, model_from_payload
from rnnvision.errors import UserError
from rnnvision.files import atomic_path
from rnnvision.tasks import get_task_class
from rnnvision.weights.catalogue import (
    FOLDER,
    MAX_FILE_BYTES,
    MAX_TOTAL_BYTES,
    WeightsEntry,
    format_metric,
    is_weights_name,
    metric_tolerance,
    read_catalogue,
    write_entry,
)
from rnnvision.weights.loading import payload_of
from rnnvision.weights.store import decode, sha256_of, to_bytes


@dataclass(frozen=True)
class MadeWeights:
    """What :func:`make_weights` wrote: the entry, and why each smaller form tried before it was refused."""

    entry: WeightsEntry
    path: Path
    refused: dict[str, str]  # stored dtype -> the reason, in words


def recipe_path(recipe: str | Path) -> Path:
    """``mnist_row_lstm`` -> ``configs/mnist_row_lstm.yaml``; a path to a YAML file is kept."""
    path = Path(recipe)
    return path if path.suffix in (".yaml", ".yml") else Path("configs") / f"{path.name}.yaml"


def portable_init_from(init_from: str) -> str:
    """What an entry records of its run's ``train.init_from``, the same on every machine.

    A checkpoint path keeps its run folder and file (``/home/me/runs/x_stage2/best.pt`` ->
    ``x_stage2/best.pt``, the stage as BENCHMARKS.md names it). A shipped weights name gets the SHA-256
    of the file it names now, the one the run started from (the entry being made may replace it).
    """
    if not init_from:
        return ""
    if is_weights_name(init_from):
        started = read_catalogue().get(init_from)  # the package's, as the trainer resolved the name
        return f"{init_from} (sha256 {started.sha256[:12]}...)" if started else init_from
    path = Path(init_from)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def make_weights(
    recipe: str | Path,
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    folder: Path | None = None,
    url: str | None = None,
    batch_size: int = 256,
    device: str = "cpu",
    stage: int = 1,
) -> MadeWeights:
    """Convert ``run_dir/best.pt`` (trained by ``recipe``) into ``folder/<recipe name>.safetensors`` and its entry.

    Args:
        recipe: the recipe's name or YAML path; the entry is named after it.
        run_dir: the run directory of ``rnnvision train RECIPE`` (its ``best.pt`` is read).
        data_dir: data root holding the test split.
        folder: where the file and ``catalogue.json`` go (default: the package's ``shipped/``).
        url: where the file will also be published (optional).
        stage: the recipe's stage that trained the run (benchmarks/train_stages.py), recorded in the entry.
    Returns:
        the entry written, the file's path, and the reasons the smaller forms were refused.
    """
    from rnnvision.config import load_config
    from rnnvision.engine.evaluation import evaluate_loaded

    folder = folder or FOLDER
    recipe_file = recipe_path(recipe)
    name, source = recipe_file.stem, Path(run_dir) / "best.pt"
    checkpoint = load_checkpoint(source)
    wanted = load_config(recipe_file, [], stage=stage)
    if (wanted.model["name"], wanted.data["name"]) != (checkpoint["model_name"], checkpoint["config"]["data"]["name"]):
        raise UserError(
            f"{source} holds {checkpoint['model_name']} on {checkpoint['config']['data']['name']}, "
            f"not what {recipe_file} trains"
        )
    task = get_task_class(checkpoint["task"])
    train = checkpoint["config"]["train"]
    config = {
        **checkpoint["config"],
        "train": {**train, "init_from": portable_init_from(train.get("init_from", ""))},
    }
    torch_device = torch.device(device)

    def measure(entry: WeightsEntry, state: dict[str, torch.Tensor]) -> dict[str, Any]:
        payload = payload_of(entry, state)
        model = model_from_payload(payload, f"weights {entry.name!r}", device=torch_device)
        metrics = evaluate_loaded(
            model, payload, source=name, data_dir=data_dir, batch_size=batch_size, device=torch_device
        )
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}

    def candidate(dtype: str) -> tuple[WeightsEntry, bytes]:
        data = to_bytes(checkpoint["state_dict"], dtype)
        entry = WeightsEntry(
            name=name,
            model=checkpoint["model_name"],
            task=checkpoint["task"],
            recipe=recipe_file.as_posix(),
            dataset=checkpoint["config"]["data"]["name"],
            metric=task.metric,
            test_metrics={},
            float32_test_metrics={},
            file=f"{name}.safetensors",
            sha256=sha256_of(data),
            bytes=len(data),
            dtype=dtype,
            num_params=int(checkpoint.get("num_params", 0)),
            config=config,
            meta=checkpoint["meta"],
            url=url,
            stage=stage,
        )
        return entry, data

    entry32, data32 = candidate("float32")
    float32 = measure(entry32, decode(data32, source=name))
    refused: dict[str, str] = {}
    for dtype in ("float16", "int8"):
        entry, data = candidate(dtype)
        if len(data) > MAX_FILE_BYTES:
            refused[dtype] = f"{len(data):,} bytes, more than {MAX_FILE_BYTES:,}"
            continue
        state = decode(data, source=name)
        if any(not torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
            refused[dtype] = "a weight overflows"
            continue
        metrics = measure(entry, state)
        loss = (float32[task.metric] - metrics[task.metric]) * (1 if task.higher_is_better else -1)
        if loss > metric_tolerance(task.metric):
            refused[dtype] = f"{format_metric(task.metric, metrics[task.metric])} loses too much"
            continue
        break
    else:
        entry, data, metrics = entry32, data32, float32
    if len(data) > MAX_FILE_BYTES:
        raise UserError(
            f"{name}: the {entry.dtype} weights take {len(data):,} bytes, more than the {MAX_FILE_BYTES:,} a shipped file may"
        )
    others = sum(e.bytes for e in read_catalogue(folder).values() if e.name != name)
    if others + len(data) > MAX_TOTAL_BYTES:
        raise UserError(
            f"{name}: with these {len(data):,} bytes the shipped weights would take {others + len(data):,}, "
            f"more than the {MAX_TOTAL_BYTES:,} the package may carry"
        )
    entry = WeightsEntry(**{**entry.to_json(), "test_metrics": metrics, "float32_test_metrics": float32})
    path = folder / entry.file
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    write_entry(entry, folder)
    return MadeWeights(entry, path, refused)
