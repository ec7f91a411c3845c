"""Tasks: per-task losses, metrics, decoding and reports, behind one interface for the trainer."""

from __future__ import annotations

from typing import Any

from rnnvision.errors import UserError
from rnnvision.tasks.base import Task, to_device
from rnnvision.tasks.classify import ClassificationTask


def make_task(name: str, meta: dict[str, Any]) -> Task:
    """The task object for ``name``, configured from dataset facts in ``meta`` (e.g. class names)."""
    if name == "classify":
        return ClassificationTask(num_classes=len(meta["class_names"]))
    raise UserError(f"unknown task {name!r}")


__all__ = ["ClassificationTask", "Task", "make_task", "to_device"]
