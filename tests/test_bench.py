"""The benchmark machinery measures, checks and writes (sizes tiny: this is not a benchmark)."""

from __future__ import annotations

import csv

import torch

from rnnvision.bench import write_csv, write_markdown
from rnnvision.bench.recurrent import bench_recurrent, recurrent_flops
from rnnvision.bench.timing import time_call


def test_recurrent_rows_compare_against_torch_nn(tmp_path):
    rows = bench_recurrent(cell="lstm", batch=2, steps=3, input_size=4, hidden=5, matmul_rate=10.0)
    assert [r.name for r in rows] == [
        "torch.nn fwd", "fused fwd", "reference fwd", "torch.nn fwd+bwd", "fused fwd+bwd", "reference fwd+bwd"
    ]
    assert rows[0].ratio == 1.0 and all(r.seconds > 0 and r.ratio > 0 and r.pct_matmul > 0 for r in rows)
    write_csv(rows, tmp_path / "r.csv")
    assert len(list(csv.DictReader(open(tmp_path / "r.csv")))) == 6
    write_markdown(rows, tmp_path / "r.md", title="t", command="cmd")
    assert "| LSTM | fused fwd |" in (tmp_path / "r.md").read_text()


def test_flop_count_is_the_matrix_products():
    # one LSTM step, batch 1, input 1, hidden 1: 4 gates x (1 input + 1 recurrent) multiply-adds
    assert recurrent_flops("lstm", 1, 1, 1, 1, backward=False) == 2 * 4 * 2
    assert recurrent_flops("gru", 2, 3, 4, 5, backward=True) == 3 * 2 * 2 * 3 * 15 * 9


def test_time_call_repeats_and_returns_a_median():
    calls = []
    seconds = time_call(lambda: calls.append(torch.ones(3).sum()), warmup=1, min_seconds=0.0, min_repeats=5)
    assert len(calls) == 6 and seconds >= 0


def test_pixelrnn_rows_check_and_time_layers_and_sampling():
    from rnnvision.bench.pixelrnn import bench_layers, bench_sampling

    rows = bench_layers(batch=2, height=3, width=4, hidden=2, matmul_rate=10.0)
    assert [(r.group, r.name) for r in rows[:4]] == [
        ("RowLSTM", "fused fwd"), ("RowLSTM", "reference fwd"), ("RowLSTM", "fused fwd+bwd"), ("RowLSTM", "reference fwd+bwd"),
    ]
    assert len(rows) == 8 and all(r.seconds > 0 for r in rows) and rows[1].ratio == 1.0
    sampled = bench_sampling(model_name="pixelrnn_row", n=2, size=3, layers=1, hidden=2)
    assert [r.name for r in sampled] == ["incremental", "naive"] and "100.00% of pixels identical" in sampled[0].note
