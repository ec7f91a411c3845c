"""Benchmarks: timing in one process, on the same inputs, after an allclose check.

Every row reports its time, its ratio to a baseline timed in the same run, and — where the work
is matrix multiplies — its achieved GFLOP/s as a percentage of this machine's matrix-multiply
rate measured in the same run. Absolute times on shared machines are noisy; ratios are not.
"""

from rnnvision.bench.timing import BenchRow, matmul_gflops, time_call, write_csv, write_markdown

__all__ = ["BenchRow", "matmul_gflops", "time_call", "write_csv", "write_markdown"]
