"""The one dataset registry: ``register_dataset``, ``list_datasets``, ``build_dataset``.

A dataset builder takes ``split`` (``train``, ``val`` or ``test``), ``root`` (the data root:
``--data-dir``, else ``$RNNVISION_DATA``, else a per-user cache), ``download`` and its own
keyword options, and returns a ``torch.utils.data.Dataset`` with an ``info``
(:class:`~rnnvision.data.base.DatasetInfo`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnvision.data.base import SPLITS, InfoDataset
from rnnvision.errors import UserError
from rnnvision.options import builder_options

COMMON_ARGS = ("split", "root", "download")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    builder: Callable[..., InfoDataset]
    task: str

    def options(self) -> dict[str, tuple[Any, Any]]:
        """The dataset's own options (those a config's ``data`` section may set)."""
        return {k: v for k, v in builder_options(self.builder).items() if k not in COMMON_ARGS}


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, task: str) -> Callable:
    """Decorator registering a dataset builder under ``name``; a duplicate name raises."""

    def decorate(builder: Callable[..., InfoDataset]) -> Callable[..., InfoDataset]:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        _DATASETS[name] = DatasetEntry(name=name, builder=builder, task=task)
        return builder

    return decorate


def list_datasets(task: str | None = None) -> list[str]:
    """Registered dataset names, sorted; only those of ``task`` if given."""
    return sorted(n for n, e in _DATASETS.items() if task is None or e.task == task)


def get_dataset_entry(name: str) -> DatasetEntry:
    if name not in _DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(list_datasets())}")
    return _DATASETS[name]


def build_dataset(
    name: str, *, split: str, root: str | Path | None = None, download: bool = False, **options: Any
) -> InfoDataset:
    """Build split ``split`` of dataset ``name`` with its ``options``."""
    entry = get_dataset_entry(name)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    unknown = sorted(set(options) - set(entry.options()))
    if unknown:
        raise UserError(
            f"dataset {name!r} has no option {', '.join(unknown)}; its options are {', '.join(entry.options()) or 'none'}"
        )
    return entry.builder(split=split, root=root, download=download, **options)
