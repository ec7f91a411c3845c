"""rnnvision: recurrent neural networks (RNN, LSTM, GRU and 2D recurrences) on images.

Public API::

    import rnnvision
    model = rnnvision.create_model("row_lstm", num_classes=10)
    rnnvision.list_models()
    model, checkpoint = rnnvision.load("runs/mnist_row_lstm/best.pt")
    rnnvision.predict((model, checkpoint), [pil_image, numpy_array, "digit.png"])  # as predict --json

The names are imported on first use (PEP 562), so ``import rnnvision`` and ``rnnvision --help`` do not
pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("rnnvision.engine.trainer", "load_model"),
    "create_model": ("rnnvision.models", "create_model"),
    "list_models": ("rnnvision.models", "list_models"),
    "predict": ("rnnvision.engine.prediction", "predict"),
    "register_model": ("rnnvision.models", "register_model"),
}

if TYPE_CHECKING:
    from rnnvision.engine.prediction import predict
    from rnnvision.engine.trainer import load_model as load
    from rnnvision.models import create_model, list_models, register_model

__all__ = ["__version__", "create_model", "list_models", "load", "predict", "register_model"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnvision' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value
