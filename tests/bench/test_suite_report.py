"""The MinGRU rows, the suite report (markdown, JSON, CSV, BENCHMARKS.md block) and ``rnnvision bench``.

Sizes are tiny and the matmul rate is stubbed where only the plumbing is under test: these are
correctness checks, not benchmarks.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch

from rnnvision.bench import report, suite
from rnnvision.bench.minrnn import bench_linear_scan, bench_mingru, mingru_flops
from rnnvision.bench.timing import BenchRow, matmul_rates
from rnnvision.cli import main
from rnnvision.errors import UserError


def test_mingru_rows_check_then_time_every_implementation():
    rows = bench_mingru(batch=2, steps=7, hidden=3, matmul_rate=10.0)
    assert [r.name for r in rows] == [
        "chunked scan fwd",
        "log scan fwd",
        "loop fwd",
        "input projection fwd",
        "torch.nn.GRU fwd",
        "chunked scan fwd+bwd",
        "log scan fwd+bwd",
        "loop fwd+bwd",
        "input projection fwd+bwd",
        "torch.nn.GRU fwd+bwd",
    ]
    loops = [r for r in rows if r.name.startswith("loop")]
    assert all(r.ratio == 1.0 for r in loops) and all(r.baseline == "loop" for r in rows)
    assert all(r.seconds > 0 and r.gflops > 0 and r.pct_matmul > 0 and r.shape == "B2 T7 H3" for r in rows)
    assert (
        mingru_flops(1, 1, 1, 1, backward=False) == 4
        and mingru_flops(2, 3, 4, 5, backward=True) == 3 * 2 * 2 * 3 * 4 * 10
    )
    scan_rows = bench_linear_scan(batch=2, steps=9, hidden=3)
    assert [r.name for r in scan_rows] == [
        "chunked scan fwd",
        "log scan fwd",
        "loop fwd",
        "chunked scan fwd+bwd",
        "log scan fwd+bwd",
        "loop fwd+bwd",
    ]
    assert all(r.group == "linear recurrence" and r.seconds > 0 and r.gflops is None for r in scan_rows)


def test_matmul_rates_time_each_gemm():
    rates = matmul_rates(sizes=(32,))
    assert "torch.mm" in rates and all(rate > 0 for rate in rates.values())
    if torch.backends.mkldnn.is_available():
        assert "oneDNN" in rates


def _tiny_family(*, quick, device, matmul_rate):
    return [
        BenchRow(
            group="TINY",
            name=f"quick={quick}",
            shape="s",
            seconds=0.002,
            baseline="x",
            ratio=1.0,
            gflops=1.0,
            pct_matmul=100 * 1.0 / matmul_rate,
            device=str(device),
        )
    ]


@pytest.fixture
def tiny_suite(monkeypatch):
    """SUITES holding one instant family, and a fixed matmul rate (measuring it takes seconds)."""
    monkeypatch.setattr(suite, "SUITES", {"tiny": _tiny_family})
    monkeypatch.setattr(report, "SUITES", suite.SUITES)
    monkeypatch.setattr(report, "matmul_rates", lambda device: {"torch.mm": 40.0, "oneDNN": 50.0})


def test_the_report_runs_whatever_suites_holds_and_says_where(tiny_suite, tmp_path):
    result = report.measure(quick=True)
    assert [r.name for r in result.rows] == ["quick=True"] and result.matmul_rate == 50.0
    assert result.rows[0].pct_matmul == 2.0  # against the best GEMM of the same run
    text = result.markdown(command="cmd")
    assert "Command: `cmd`" in text and f"torch {torch.__version__}" in text and "UTC" in text
    assert "torch.mm 40, oneDNN 50" in text and "| TINY | quick=True |" in text
    csv_path, md_path = result.write(tmp_path, command="cmd")
    assert csv_path.name == "suite_cpu.csv" and md_path.read_text() == text
    assert next(csv.DictReader(csv_path.read_text().splitlines()))["name"] == "quick=True"
    assert json.loads(json.dumps(result.to_json()))["rows"][0]["group"] == "TINY"


def test_update_section_replaces_only_the_marked_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# B\n\n## mine\n<!-- s:begin -->\nold\n<!-- s:end -->\n\n## theirs\nkeep\n")
    report.update_section(path, "s", "new table\n")
    assert path.read_text() == "# B\n\n## mine\n<!-- s:begin -->\nnew table\n<!-- s:end -->\n\n## theirs\nkeep\n"
    with pytest.raises(UserError, match="markers"):
        report.update_section(path, "other", "x")


def test_cli_bench_json_is_one_object_and_out_writes_files(tiny_suite, tmp_path, capsys):
    assert main(["bench", "--quick", "--json", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)
    assert out.count("\n") == 1 and payload["matmul_gflops"] == {"torch.mm": 40.0, "oneDNN": 50.0}
    assert payload["rows"][0]["name"] == "quick=True" and payload["device"] == "cpu"
    assert "Command: `rnnvision bench --quick`" in (tmp_path / "suite_cpu.md").read_text()
    before = (tmp_path / "suite_cpu.csv").read_bytes()
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 2  # never over an existing table
    assert "suite_cpu.csv already exists" in capsys.readouterr().err
    assert (tmp_path / "suite_cpu.csv").read_bytes() == before
    assert main(["bench", "--suite", "tiny"]) == 0
    assert "| TINY | quick=False |" in capsys.readouterr().out


def test_cli_bench_bad_requests_exit_2_with_one_line(tiny_suite, capsys):
    assert main(["bench", "--suite", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown benchmark suite nope; the suites are tiny" in err
    if not torch.cuda.is_available():
        assert main(["bench", "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
