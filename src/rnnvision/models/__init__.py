"""Models: one registry, one file per model family. Importing this package registers them all."""

from rnnvision.models import classifier, crnn, lru, mdlstm, minrnn, pixelrnn, renet, sequence  # noqa: F401  (registers the models)
from rnnvision.models.registry import ModelEntry, create_model, get_model_entry, list_models, register_model

__all__ = ["ModelEntry", "create_model", "get_model_entry", "list_models", "register_model"]
