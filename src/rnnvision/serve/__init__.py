"""``rnnvision serve``: a web page and JSON API to draw, upload and watch the recurrence.

Needs the ``serve`` extra (``pip install 'rnnvision[serve]'``). :mod:`.inference` holds the
model work and imports no web framework; :mod:`.app` is the Starlette application.
"""

from rnnvision.serve.app import create_app, model_names, serve
from rnnvision.serve.inference import ServedModel, load_served

__all__ = ["ServedModel", "create_app", "load_served", "model_names", "serve"]
