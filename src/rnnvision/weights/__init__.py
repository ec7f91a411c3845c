"""Pretrained weights shipped with rnnvision, in the spirit of torchvision's weights enums.

``rnnvision list-weights`` lists them; ``rnnvision.load(NAME_or_PATH)`` and ``--weights NAME`` load
them wherever a checkpoint is accepted. :mod:`.catalogue` is the registry (no torch),
:mod:`.store` the files (SHA-256, download, float16 and int8 storage), :mod:`.loading` the one loader (:func:`resolve`),
:mod:`.make` turns a training run into an entry (``benchmarks/make_weights.py``).
"""

from typing import TYPE_CHECKING, Any

from rnnvision.weights.catalogue import WeightsEntry, get_weights, list_weights, read_catalogue

if TYPE_CHECKING:
    from rnnvision.weights.loading import load_payload, resolve

__all__ = ["WeightsEntry", "get_weights", "list_weights", "load_payload", "read_catalogue", "resolve"]


def __getattr__(name: str) -> Any:
    if name in ("load_payload", "resolve"):  # these import torch; the catalogue does not
        from rnnvision.weights import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'rnnvision.weights' has no attribute {name!r}")
