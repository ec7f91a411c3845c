"""Placeholder nodes in an ONNX export: a function whose values torch computes but whose operations
the exporter must not record (an ``autograd.Function`` whose ``symbolic`` writes the node instead)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def tracer_paused() -> Iterator[None]:
    """Run the body with torch's tracer off, so only the enclosing function's own node is exported."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)  # type: ignore[attr-defined]
