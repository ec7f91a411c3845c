"""Comparing /predict answers: equal, except for floats a batch sums in another order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from rnnvision.serve.inference import decode_picture

QUANTUM = 1 / 510  # the largest error of a picture in [0, 1] sent as one byte per value


def assert_same_answer(alone, together, path: str = "") -> None:
    """Equal; floats to 1e-5 and pictures to one byte step (a batch computes in another order)."""
    if isinstance(alone, dict) and "uint8" in alone:
        np.testing.assert_allclose(
            decode_picture(together),
            decode_picture(alone),
            atol=2 * QUANTUM * (alone["high"] - alone["low"]),
            err_msg=path,
        )
    elif isinstance(alone, dict):
        assert set(alone) == set(together), path
        for key in alone:
            assert_same_answer(alone[key], together[key], f"{path}.{key}")
    elif isinstance(alone, list):
        assert len(alone) == len(together), path
        for k, (a, b) in enumerate(zip(alone, together)):
            assert_same_answer(a, b, f"{path}[{k}]")
    elif isinstance(alone, float):
        assert together == pytest.approx(alone, abs=1e-5), path
    else:
        assert together == alone, path


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
