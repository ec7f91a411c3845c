"""benchmarks/bench_lru.py at tiny sizes: every implementation must agree with the loop before it is
timed, and the issue's two ratios are printed for the scan and the C++ kernel (not a benchmark)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnnvision.ops.lru_kernel import lru_kernel

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lru.py"


@pytest.mark.parametrize("bf16", [False, True])
def test_layer_mode_checks_agreement_then_prints_the_target_ratios(bf16):
    args = ["--batch", "2", "--steps", "12", "--input", "4", "--state", "3", "--min-seconds", "0", "--repeats", "1"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args, *(["--bf16"] if bf16 else [])],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    rows = ["LRU scan"] + (["LRU C++ kernel (fused)"] if lru_kernel() is not None else [])
    for name in rows:
        line = re.search(
            rf"^{re.escape(name)}: its reference loop takes ([0-9.]+)x its time, torch.nn.LSTM ([0-9.]+)x$",
            result.stdout,
            re.M,
        )
        assert line is not None, result.stdout
        assert float(line.group(1)) > 0 and float(line.group(2)) > 0
