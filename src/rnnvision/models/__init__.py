"""Models: one registry, one file per model family. Importing this package registers them all."""

from rnnvision.models import classifier, crnn  # noqa: F401  (registers the models)
from rnnvision.models import classifier  # noqa: F401  (registers the classifiers)
from rnnvision.models import mdlstm, renet  # noqa: F401  (2D recurrences: ReNet, ReSeg, 2D LSTM)
from rnnvision.models.registry import ModelEntry, create_model, get_model_entry, list_models, register_model

__all__ = ["ModelEntry", "create_model", "get_model_entry", "list_models", "register_model"]
