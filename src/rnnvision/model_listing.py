"""The registered models read from the source of rnnvision.models, without importing torch (``rnnvision list-models``).

Importing :mod:`rnnvision.models` builds the registry but imports torch (about 2 s), which a
listing does not need. The ``@register_model(task=...)`` decorators of the model modules are
the one registry: this module reads them with :mod:`ast` (name = the builder's function name,
its task, the first line of its docstring), so the listing cannot disagree with the code; a test
compares it with the imported registry.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from rnnvision.errors import UserError

_PACKAGE = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class ModelListing:
    name: str
    task: str
    summary: str


def model_listings(task: str | None = None) -> list[ModelListing]:
    """Every ``@register_model`` builder of the package, sorted by name; only ``task``'s if given
    (an unknown task raises :class:`UserError`, as :func:`rnnvision.models.list_models`)."""
    listings = sorted(
        (item for path in sorted(_PACKAGE.glob("*.py")) for item in _registered(path)), key=lambda m: m.name
    )
    tasks = sorted({m.task for m in listings})
    if task is not None and task not in tasks:
        raise UserError(f"unknown task {task!r}; tasks are {', '.join(tasks)}")
    return [m for m in listings if task is None or m.task == task]


def _registered(path: Path) -> list[ModelListing]:
    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "register_model":
                task = next(k.value for k in decorator.keywords if k.arg == "task")
                if not isinstance(task, ast.Constant) or not isinstance(task.value, str):
                    raise ValueError(f"{path.name}: {node.name}'s task must be a string literal for the listing")
                doc = ast.get_docstring(node) or ""
                found.append(ModelListing(node.name, task.value, doc.strip().splitlines()[0] if doc.strip() else ""))
    return found
