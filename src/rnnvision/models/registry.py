"""The one model registry: ``register_model``, ``list_models``, ``create_model``.

Each model size is a small builder function holding only architecture numbers, registered with
the task it serves (``classify``, ``recognize``, ``segment``, ``generate``) and the keyword
arguments that make a tiny instance for fast tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from rnnvision.errors import UserError
from rnnvision.options import builder_options

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder, its task, the options of a tiny test instance, and the old
    names of renamed options (old -> new), which configs and checkpoints written before may hold."""

    name: str
    builder: Builder
    task: str
    tiny: dict[str, Any] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, tuple[Any, Any]]:
        """Keyword options of the builder: name -> (type annotation, default)."""
        return builder_options(self.builder)

    def current_names(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` with every old option name replaced by its new one; an option given under both
        names raises :class:`UserError`."""
        given = dict(options)
        for old, new in self.renamed.items():
            if old in given:
                if new in given:
                    raise UserError(f"model {self.name!r}: {old} is the old name of {new}; give only {new}")
                given[new] = given.pop(old)
        return given


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    *, task: str, tiny: dict[str, Any] | None = None, renamed: dict[str, str] | None = None
) -> Callable[[Builder], Builder]:
    """Decorator: register a builder under its function name. A duplicate name raises ``ValueError``.

    ``renamed`` maps the old names of renamed options to the new ones: configs, ``--set`` and
    checkpoints (shipped weights too) that use an old name still build the model.
    """

    def decorate(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelEntry(
            name=name, builder=builder, task=task, tiny=dict(tiny or {}), renamed=dict(renamed or {})
        )
        return builder

    return decorate


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered models, sorted; only those of ``task`` if given (an unknown task raises UserError)."""
    tasks = sorted({entry.task for entry in _REGISTRY.values()})
    if task is not None and task not in tasks:
        raise UserError(f"unknown task {task!r}; tasks are {', '.join(tasks)}")
    return sorted(name for name, entry in _REGISTRY.items() if task is None or entry.task == task)


# options that count something (CONTRIBUTING's names), with the least each may be: a model with
# num_layers=-1 builds without complaint, with no layers at all
COUNTS = (
    "decoder_chans", "directions", "head_chans", "hidden_size", "hidden_sizes", "img_size", "in_chans", "in_features",
    "kernel", "num_classes", "num_layers", "num_outputs", "patch_size", "patch_sizes", "seq_len", "state_size",
    "pooled_chans", "stem_chans",
)  # fmt: skip
LEAST_SIZE = dict.fromkeys(COUNTS, 1) | {"head_hidden": 0}  # head_hidden 0: a single linear layer


def check_sizes(name: str, given: Mapping[str, Any], options: Mapping[str, tuple[Any, Any]]) -> None:
    """Refuse, with :class:`UserError`, a count below :data:`LEAST_SIZE` (a tuple's every entry is checked).

    A builder's own default always passes (crnn's ``hidden_size`` 0 means its variant's width).
    """
    for option, value in given.items():
        least = LEAST_SIZE.get(option)
        if least is None:
            continue
        default = options[option][1]
        if isinstance(default, int) and not isinstance(default, bool):
            least = min(least, default)
        values = value if isinstance(value, (tuple, list)) else (value,)
        if any(isinstance(v, int) and not isinstance(v, bool) and v < least for v in values):
            raise UserError(f"model {name!r}: {option} must be at least {least}, got {value!r}")


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; an unknown name raises :class:`UserError`."""
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; run `rnnvision list-models` to see the {len(_REGISTRY)} models")
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword options ``kwargs``.

    Unknown options raise :class:`UserError` naming the options the model accepts; so do a count
    below its least (:func:`check_sizes`), an option value the builder refuses with ``ValueError``
    (its message says which and why), and one torch itself refuses while building
    (``RuntimeError``: the options given are named).
    """
    entry = get_model_entry(name)
    options = entry.options()
    kwargs = entry.current_names(kwargs)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise UserError(f"model {name!r} has no option {', '.join(unknown)}; its options are {', '.join(options)}")
    check_sizes(name, kwargs, options)
    try:
        model = entry.builder(**kwargs)
    except ValueError as error:
        raise UserError(f"model {name!r}: {error}") from error
    except RuntimeError as error:  # torch refusing a size no builder checks, e.g. a negative width
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserError(f"model {name!r} cannot be built with {given} ({str(error).splitlines()[0]})") from error
    model.model_name = name  # type: ignore[assignment]  # a plain attribute (nn.Module's typing allows only tensors and modules)
    return model
