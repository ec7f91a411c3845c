"""``rnnvision.layers`` exports every public layer defined in its modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from torch import nn

import rnnvision.layers


def test_every_public_layer_is_exported():
    defined = set()
    for info in pkgutil.iter_modules(rnnvision.layers.__path__):
        module = importlib.import_module(f"rnnvision.layers.{info.name}")
        defined |= {
            name
            for name, obj in vars(module).items()
            if inspect.isclass(obj)
            and issubclass(obj, nn.Module)
            and obj.__module__ == module.__name__
            and not name.startswith("_")
        }
    assert {"MinGRU", "MinLSTM", "CrossScan2d", "RowLSTM", "DiagonalBiLSTM", "LRU", "MDLSTM2d"} <= defined
    assert defined <= set(rnnvision.layers.__all__)
    assert all(getattr(rnnvision.layers, name) is not None for name in rnnvision.layers.__all__)
