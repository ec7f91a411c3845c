"""Keyword options of builder functions, and checking user-given values against their types.

Model and dataset builders declare their options as typed keyword arguments; configs and
``--set`` values are checked against those annotations here, so a wrong type is reported by
name before anything is built.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from rnnvision.errors import UserError


def builder_options(fn: Callable[..., Any]) -> dict[str, tuple[Any, Any]]:
    """Keyword options of a builder function: name -> (resolved annotation, default)."""
    hints = typing.get_type_hints(fn)
    return {
        name: (hints.get(name, Any), param.default)
        for name, param in inspect.signature(fn).parameters.items()
        if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD)
    }


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
