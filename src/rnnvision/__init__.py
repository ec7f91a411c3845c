"""rnnvision: recurrent neural networks (RNN, LSTM, GRU and 2D recurrences) on images.

Public API::

    import rnnvision
    model = rnnvision.create_model("row_lstm", num_classes=10)
    rnnvision.list_models()
    model, payload = rnnvision.load("runs/mnist_row_lstm/best.pt")   # a checkpoint
    model, payload = rnnvision.load("mnist_row_lstm")                # shipped weights
    rnnvision.predict((model, payload), [pil_image, numpy_array, "digit.png"])  # as predict --json
    rnnvision.list_weights()

The names are imported on first use (PEP 562), so ``import rnnvision`` and ``rnnvision --help`` do not
pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("rnnvision.weights.loading", "resolve"),
    "list_weights": ("rnnvision.weights.catalogue", "list_weights"),
    "create_model": ("rnnvision.models", "create_model"),
    "list_models": ("rnnvision.models", "list_models"),
    "predict": ("rnnvision.engine.prediction", "predict"),
    "register_model": ("rnnvision.models", "register_model"),
}

if TYPE_CHECKING:
    from rnnvision.engine.prediction import predict
    from rnnvision.models import create_model, list_models, register_model
    from rnnvision.weights.catalogue import list_weights
    from rnnvision.weights.loading import resolve as load

__all__ = ["__version__", "create_model", "list_models", "list_weights", "load", "predict", "register_model"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnvision' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value
