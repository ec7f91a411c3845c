"""Keyword options of builder functions, and checking user-given values against their types.

Model and dataset builders declare their options as typed keyword arguments; configs and
``--set`` values are checked against those annotations here, so a wrong type is reported by
name before anything is built.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import typing_extensions

from rnnvision.errors import UserError

_UNPACK = {typing_extensions.Unpack, getattr(typing, "Unpack", typing_extensions.Unpack)}


@dataclass(frozen=True)
class Default:
    """The default of an option in a ``TypedDict`` of options that builders share: ``Annotated[int, Default(10)]``."""

    value: Any


def builder_options(fn: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Keyword options of a builder function: name -> (resolved annotation, default).

    Options shared by several builders come in as ``**options: Unpack[SharedOptions]``, a
    ``TypedDict`` whose fields carry their defaults (:class:`Default`); they count as the builder's own.
    """
    hints = typing.get_type_hints(fn)
    options: dict[str, tuple[Any, Any]] = {}
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD):
            options[name] = (hints.get(name, Any), param.default)
        elif param.kind == param.VAR_KEYWORD and typing.get_origin(hints.get(name)) in _UNPACK:
            (shared,) = typing.get_args(hints[name])
            options.update(shared_options(shared))
    return options


def shared_options(shared: type) -> dict[str, tuple[Any, Any]]:
    """The fields of a ``TypedDict`` of shared options: name -> (annotation, its :class:`Default`'s value).

    Every field carries a :class:`Default` (a builder given none of them still builds).
    """
    options = {}
    for name, hint in typing.get_type_hints(shared, include_extras=True).items():
        defaults = [m.value for m in getattr(hint, "__metadata__", ()) if isinstance(m, Default)]
        if not defaults:
            raise TypeError(f"{shared.__name__}.{name} needs a default: Annotated[type, Default(value)]")
        options[name] = (hint.__origin__, defaults[0])  # Annotated[X, ...].__origin__ is X
    return options


def with_defaults(shared: type, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` shared options (a ``TypedDict`` of ``shared``) with the defaults of those not given."""
    return {**{name: default for name, (_, default) in shared_options(shared).items()}, **given}


def _convert(value: Any, annotation: Any) -> Any:
    """Return ``value`` as ``annotation`` (YAML lists become tuples); raise TypeError if it is not one."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _convert(value, option)
            except TypeError:
                continue
        raise TypeError
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeError
    if annotation is type(None):
        if value is None:
            return None
        raise TypeError
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise TypeError from None
        raise TypeError
    if annotation is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise TypeError
            items = [_convert(v, a) for v, a in zip(value, args)]
        else:
            items = [_convert(v, args[0]) if args else v for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if isinstance(value, dict):
            return value
        raise TypeError
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise TypeError


def type_name(annotation: Any) -> str:
    """A short human-readable name of a type annotation (a ``Literal`` lists its values)."""
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(value) for value in typing.get_args(annotation))
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    return text or str(annotation).replace("typing.", "")


def check_value(key: str, value: Any, annotation: Any) -> Any:
    """Check (and normalise) one option value; a wrong type raises :class:`UserError` naming ``key``."""
    try:
        return _convert(value, annotation)
    except TypeError:
        raise UserError(f"{key} must be {type_name(annotation)}, got {value!r} ({type(value).__name__})") from None
