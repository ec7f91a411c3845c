"""Where a training step's time goes: the data loader's share, cold (decoding) and cached, of steps
taken exactly as the trainer takes them, and the epoch and schedule they project."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from rnnvision.config import load_config
from rnnvision.data import build_dataset
from rnnvision.data.base import dataset_meta
from rnnvision.engine.trainer import resolve_model_kwargs
from rnnvision.models import create_model
from rnnvision.tasks import make_task


@dataclass
class StepSplit:
    """Seconds of ``steps`` training steps split into loading and computing, for the first pass over
    the batches (``cold``: files decoded) and the second (``cached``: as every epoch after the first)."""

    steps: int
    cold_load: float
    cold_compute: float
    cached_load: float
    cached_compute: float
    steps_per_epoch: int
    epochs: int

    @property
    def step_seconds(self) -> float:
        """Seconds per step in the cached pass (what the projections use)."""
        return (self.cached_load + self.cached_compute) / self.steps

    @property
    def cold_load_share(self) -> float:
        return self.cold_load / (self.cold_load + self.cold_compute)

    @property
    def cached_load_share(self) -> float:
        return self.cached_load / (self.cached_load + self.cached_compute)

    @property
    def epoch_seconds(self) -> float:
        """A projected training epoch (validation excluded)."""
        return self.steps_per_epoch * self.step_seconds

    @property
    def schedule_hours(self) -> float:
        """The recipe's whole schedule, projected."""
        return self.epochs * self.epoch_seconds / 3600


def time_training_steps(recipe: str, *, steps: int, data_dir: str) -> StepSplit:
    """``steps`` training steps of ``recipe`` as the trainer takes them (its DataLoader order, batch
    size, augmentation, loss, AdamW at the recipe's rate), twice over the same batches."""
    config = load_config(recipe)
    data = {k: v for k, v in config.data.items() if k != "name"}
    train_set = build_dataset(config.data["name"], split="train", root=data_dir, **data)
    model = create_model(config.model["name"], **resolve_model_kwargs(config.model, train_set.info))
    task = make_task(config.task, dataset_meta(train_set.info))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr)
    loader = DataLoader(
        train_set,
        batch_size=config.train.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        collate_fn=task.collate,
        drop_last=True,
    )
    assert loader.batch_sampler is not None  # a batch_size makes one
    order = list(loader.batch_sampler)[:steps]  # the same batches in both passes
    model.train()
    passes = []
    for _ in range(2):
        load = compute = 0.0
        for indices in order:
            started = time.perf_counter()
            batch = task.collate([train_set[i] for i in indices])
            loaded = time.perf_counter()
            loss = task.training_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            load, compute = load + loaded - started, compute + time.perf_counter() - loaded
        passes.append((load, compute))
    (cold_load, cold_compute), (cached_load, cached_compute) = passes
    return StepSplit(
        steps=len(order),
        cold_load=cold_load,
        cold_compute=cold_compute,
        cached_load=cached_load,
        cached_compute=cached_compute,
        steps_per_epoch=len(train_set) // config.train.batch_size,
        epochs=config.train.epochs,
    )
