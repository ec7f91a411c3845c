"""Run the benchmark suite and report it: markdown with machine, torch version and date; JSON; CSV.

:func:`measure` measures this machine's matrix-multiply rate (each GEMM torch has), then runs
the suite families against the best of them, all in this process. :func:`update_section`
regenerates the text between two marker comments of a markdown file (``BENCHMARKS.md``) and
leaves everything else as it is.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnvision.bench.suite import SUITES, exact_float32, run_suite
from rnnvision.bench.timing import BenchRow, machine_summary, markdown_table, matmul_rates, write_csv
from rnnvision.errors import UserError
from rnnvision.files import atomic_write_text


@dataclass
class SuiteResult:
    """Rows of one suite run and what they were measured against."""

    rows: list[BenchRow]
    matmul_rates: dict[str, float]  # GFLOP/s per GEMM, measured in this run
    device: str
    machine: str
    date: str

    @property
    def matmul_rate(self) -> float:
        """The denominator of every row's ``% of matmul``: the best GEMM."""
        return max(self.matmul_rates.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "machine": self.machine,
            "torch": torch.__version__,
            "date": self.date,
            "matmul_gflops": self.matmul_rates,
            "matmul_rate_used": self.matmul_rate,
            "rows": [dataclasses.asdict(row) for row in self.rows],
        }

    def markdown(self, *, command: str) -> str:
        """Header (command, machine, torch, date, matmul rates) and the table of rows."""
        rates = ", ".join(f"{name} {rate:.0f}" for name, rate in self.matmul_rates.items())
        where = "GPU" if self.device.startswith("cuda") else "CPU"
        return (
            f"Command: `{command}`  \nMachine: {self.machine}  \nDate: {self.date}; device {self.device} ({where} rows)  \n"
            f"Matrix-multiply rate measured in this run (GFLOP/s): {rates}; `% of matmul` is against the best, "
            f"{self.matmul_rate:.0f}.\n\n{markdown_table(self.rows)}"
        )

    def write(self, out_dir: str | Path, *, command: str) -> tuple[Path, Path]:
        """Write ``suite_<device type>.csv`` and ``.md`` under ``out_dir``; returns both paths."""
        table, text = suite_files(out_dir, self.device)
        write_csv(self.rows, table)
        atomic_write_text(text, self.markdown(command=command))
        return table, text


def suite_files(out_dir: str | Path, device: str) -> tuple[Path, Path]:
    """The two files ``bench --out DIR`` writes: ``suite_<device type>.csv`` and ``.md``."""
    stem = Path(out_dir) / f"suite_{torch.device(device).type}"
    return stem.with_suffix(".csv"), stem.with_suffix(".md")


def check_suite_request(names: list[str] | None, device: str) -> None:
    """Raise :class:`UserError` for an unknown family or a device this machine does not have."""
    unknown = sorted(set(names or ()) - set(SUITES))
    if unknown:
        raise UserError(f"unknown benchmark suite {', '.join(unknown)}; the suites are {', '.join(SUITES)}")
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu or cuda") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; run on a GPU machine or use --device cpu")


def measure(
    names: list[str] | None = None,
    *,
    quick: bool = False,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Run the suite families ``names`` (all of SUITES by default) in this process; ``progress`` gets a line per step."""
    check_suite_request(names, device)
    with exact_float32():
        if progress:
            progress("bench: measuring the matmul rate ...")
        rates = matmul_rates(device=device)
        rows, _ = run_suite(names, quick=quick, device=device, matmul_rate=max(rates.values()), progress=progress)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return SuiteResult(rows=rows, matmul_rates=rates, device=device, machine=machine_summary(), date=date)


def update_section(path: str | Path, marker: str, text: str) -> None:
    """Replace what stands between ``<!-- marker:begin -->`` and ``<!-- marker:end -->`` in ``path``."""
    path = Path(path)
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    content = path.read_text()
    if content.count(begin) != 1 or content.count(end) != 1 or content.index(begin) > content.index(end):
        raise UserError(f"{path} must hold the markers {begin} and {end} once each, in that order")
    head, rest = content.split(begin)
    _, tail = rest.split(end)
    atomic_write_text(path, f"{head}{begin}\n{text.strip()}\n{end}{tail}")
