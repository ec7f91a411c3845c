"""The ``impl`` convention: how a layer with a fast path names its implementations.

Every such layer takes ``impl`` from one of the ``Literal`` sets below, and every model builder
annotates its ``impl`` option with the set of the layer it drives, so a misspelt ``model.impl`` in
a config is refused by name by the option checker (:mod:`rnnvision.options`) before anything is
built; the layer checks it again with :func:`check_impl` when built from Python. The names:

- ``"auto"``: the fast path wherever it serves the call, else the reference (never an error);
- ``"reference"``: the plain loop that specifies the computation, the one tests compare against;
- the fast path by what it does: ``"fused"`` (whole sequences, rows or diagonals per kernel call:
  torch's fused RNN kernels, the PixelRNN layers, the LRU's C++ loop on the CPU), ``"wavefront"`` (MDLSTM, one anti-diagonal per
  step), ``"scan"`` (the LRU's parallel linear scan), ``"matmul"`` (the LRU's chunks as matrix
  products), ``"chunked"`` and ``"log"`` (the two scans of :mod:`rnnvision.ops.scan`, chosen by name
  where a layer offers both).

Naming an implementation that cannot serve a call raises ``ValueError``; ``"auto"`` falls back.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

RecurrentImpl = Literal["auto", "fused", "reference"]  # RNN/LSTM/GRU, IndRNN, ReNet, RowLSTM, DiagonalBiLSTM
MDLSTMImpl = Literal["auto", "wavefront", "reference"]  # MDLSTM2d
LRUImpl = Literal["auto", "reference", "scan", "matmul", "fused"]  # LRU
MinImpl = Literal["auto", "reference", "chunked", "log"]  # MinGRU, MinLSTM and the models built on them
ScanImpl = Literal["auto", "chunked", "log"]  # the linear_scan op (its reference is linear_scan_reference)
IMPL_SETS = (RecurrentImpl, MDLSTMImpl, LRUImpl, MinImpl, ScanImpl)  # a new layer family adds its set here


def impl_names(kind: Any) -> tuple[str, ...]:
    """The names a ``Literal`` implementation set allows, e.g. ``("auto", "fused", "reference")``."""
    return typing.get_args(kind)


def check_impl(impl: str, kind: Any) -> str:
    """Return ``impl`` if ``kind`` (one of the sets above) allows it, else raise ``ValueError``."""
    names = impl_names(kind)
    if impl not in names:
        raise ValueError(f"impl must be one of {names}, got {impl!r}")
    return impl
