"""Tasks: per-task losses, metrics, decoding and reports, behind one interface for the trainer.

Each task module registers its :class:`Task` subclass with :func:`register_task`; the trainer,
``eval`` and ``predict`` find it by the name a model is registered with.
"""

from __future__ import annotations

from typing import Any

from rnnvision.tasks.base import Task, get_task_class, register_task, to_device
from rnnvision.tasks.classify import ClassificationTask
from rnnvision.tasks.generate import GenerationTask
from rnnvision.tasks.recognize import RecognitionTask
from rnnvision.tasks.regress import RegressionTask
from rnnvision.tasks.segment import SegmentationTask
from rnnvision.tasks.tag import TaggingTask


def make_task(name: str, meta: dict[str, Any]) -> Task:
    """The task object for ``name``, configured from the dataset facts in ``meta``."""
    return get_task_class(name).from_meta(meta)


__all__ = [
    "ClassificationTask",
    "GenerationTask",
    "RecognitionTask",
    "RegressionTask",
    "SegmentationTask",
    "TaggingTask",
    "Task",
    "get_task_class",
    "make_task",
    "register_task",
    "to_device",
]
