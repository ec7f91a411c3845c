"""rnnvision: recurrent neural networks (RNN, LSTM, GRU and 2D recurrences) on images.

Public API::

    import rnnvision
    model = rnnvision.create_model("row_lstm", num_classes=10)
    rnnvision.list_models()
    model, checkpoint = rnnvision.load("runs/mnist_row_lstm/best.pt")
"""

__version__ = "0.1.0"

from rnnvision.engine.trainer import load_model as load  # noqa: E402
from rnnvision.models import create_model, list_models, register_model  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "load", "register_model"]
