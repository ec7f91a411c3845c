"""benchmarks/mdlstm_int8_floor.py runs: its three step bodies export, quantize and run in onnxruntime (not a benchmark)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mdlstm_int8_floor.py"


def test_the_floor_script_times_all_three_step_bodies():
    pytest.importorskip("onnxruntime")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    for body in ("full", "product only", "empty"):
        row = re.search(rf"^\| {body} \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+)x \|$", result.stdout, re.M)
        assert row is not None and all(float(v) > 0 for v in row.groups()), result.stdout
