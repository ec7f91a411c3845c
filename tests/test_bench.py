"""The benchmark machinery measures, checks and writes (sizes tiny: this is not a benchmark)."""

from __future__ import annotations

import csv

import pytest
import torch

from rnnvision.bench import write_csv, write_markdown
from rnnvision.bench.recurrent import bench_recurrent, recurrent_flops
from rnnvision.bench.timing import time_call


def test_recurrent_rows_compare_against_torch_nn(tmp_path):
    rows = bench_recurrent(cell="lstm", batch=2, steps=3, input_size=4, hidden=5, matmul_rate=10.0)
    assert [r.name for r in rows] == [
        "torch.nn fwd",
        "fused fwd",
        "reference fwd",
        "torch.nn fwd+bwd",
        "fused fwd+bwd",
        "reference fwd+bwd",
    ]
    assert rows[0].ratio == 1.0 and all(r.seconds > 0 and r.pct_matmul > 0 for r in rows)
    for base, timed in ((rows[0], rows[:3]), (rows[3], rows[3:])):  # ratios against torch.nn's time, same pass
        assert [r.ratio for r in timed] == pytest.approx([r.seconds / base.seconds for r in timed])
    write_csv(rows, tmp_path / "r.csv")
    assert len(list(csv.DictReader((tmp_path / "r.csv").read_text().splitlines()))) == 6
    write_markdown(rows, tmp_path / "r.md", title="t", command="cmd")
    assert "| LSTM | fused fwd |" in (tmp_path / "r.md").read_text()


def test_flop_count_is_the_matrix_products():
    # one LSTM step, batch 1, input 1, hidden 1: 4 gates x (1 input + 1 recurrent) multiply-adds
    assert recurrent_flops("lstm", 1, 1, 1, 1, backward=False) == 2 * 4 * 2
    assert recurrent_flops("gru", 2, 3, 4, 5, backward=True) == 3 * 2 * 2 * 3 * 15 * 9


def test_time_call_repeats_and_returns_a_median(monkeypatch):
    """A fake clock: each call of ``fn`` takes the next duration in a list; warm-up calls are not timed."""
    durations = iter([100.0, 3.0, 1.0, 50.0, 2.0, 4.0])  # the first is the warm-up
    now = [0.0]
    monkeypatch.setattr("rnnvision.bench.timing.time.perf_counter", lambda: now[0])

    def fn():
        now[0] += next(durations)

    seconds = time_call(fn, warmup=1, min_seconds=0.0, min_repeats=5)
    assert seconds == 3.0  # median of 3, 1, 50, 2, 4 (the warm-up's 100 left out)
    assert next(durations, None) is None  # exactly the warm-up and five timed calls ran


def test_time_call_repeats_until_min_seconds_up_to_max_repeats(monkeypatch):
    now = [0.0]
    calls = []
    monkeypatch.setattr("rnnvision.bench.timing.time.perf_counter", lambda: now[0])

    def fn():
        calls.append(now[0])
        now[0] += 1.0

    assert time_call(fn, warmup=0, min_seconds=10.0, min_repeats=2, max_repeats=50) == 1.0
    assert len(calls) == 10  # stops once 10 (fake) seconds have passed
    calls.clear()
    time_call(fn, warmup=0, min_seconds=1e9, min_repeats=2, max_repeats=7)
    assert len(calls) == 7


def test_crnn_latency_rows_are_per_batch_with_per_image_ratios():
    from rnnvision.bench.recognition import bench_crnn_latency

    rows = bench_crnn_latency(size="tiny", batch_sizes=(1, 3), width=20, height=16)
    assert [r.name for r in rows] == ["tiny batch 1", "tiny batch 3"] and rows[0].ratio == 1.0
    assert all(r.seconds > 0 and "ms per image" in r.note for r in rows) and rows[1].shape == "3x1x16x20"


def test_mdlstm_and_renet_suites_check_then_time_against_their_baselines():
    from rnnvision.bench.mdlstm import bench_mdlstm
    from rnnvision.bench.renet import bench_renet
    from rnnvision.bench.suite import SUITES

    assert {"mdlstm", "renet"} <= set(SUITES)
    rows = bench_mdlstm(batch=2, size=3, in_chans=1, hidden=2, directions=2, matmul_rate=10.0)
    assert [r.name for r in rows] == ["reference fwd", "wavefront fwd", "reference fwd+bwd", "wavefront fwd+bwd"]
    assert rows[0].ratio == 1.0 and all(r.seconds > 0 and r.gflops > 0 for r in rows)
    rows = bench_renet(batch=2, in_chans=1, size=4, patch=2, hidden=3, matmul_rate=10.0)
    assert [r.ratio for r in rows][::2] == [1.0, 1.0] and all(r.baseline == "lower bound" for r in rows)


def test_pixelrnn_rows_check_and_time_layers_and_sampling():
    from rnnvision.bench.pixelrnn import bench_layers, bench_sampling

    rows = bench_layers(batch=2, height=3, width=4, hidden=2, matmul_rate=10.0)
    assert [(r.group, r.name) for r in rows[:4]] == [
        ("RowLSTM", "fused fwd"),
        ("RowLSTM", "reference fwd"),
        ("RowLSTM", "fused fwd+bwd"),
        ("RowLSTM", "reference fwd+bwd"),
    ]
    assert len(rows) == 8 and all(r.seconds > 0 for r in rows) and rows[1].ratio == 1.0
    sampled = bench_sampling(model_name="pixelrnn_row", n=2, size=3, layers=1, hidden=2)
    assert [r.name for r in sampled] == ["incremental", "naive"] and "100.00% of pixels identical" in sampled[0].note


def test_interleaved_times_alternate_the_calls_round_by_round(monkeypatch):
    """A fake clock: each call takes a fixed time per name; the log shows the calls alternating."""
    from rnnvision.bench.timing import interleaved_times

    now, log = [0.0], []
    monkeypatch.setattr("rnnvision.bench.timing.time.perf_counter", lambda: now[0])

    def timed(name, seconds):
        def call():
            log.append(name)
            now[0] += seconds

        return call

    found = interleaved_times(
        {"a": timed("a", 1.0), "b": timed("b", 3.0)},
        rounds=3,
        warmup_rounds=1,
        warmup=0,
        min_seconds=0.0,
        min_repeats=1,
        max_repeats=1,
    )
    assert found == {"a": [1.0, 1.0, 1.0], "b": [3.0, 3.0, 3.0]}
    assert log == ["a", "b"] * 4  # one untimed warm-up round, then three timed rounds


def test_saved_for_backward_counts_the_distinct_storages_autograd_keeps():
    from rnnvision.bench.timing import saved_for_backward

    x, w = torch.ones(3, 4, requires_grad=True), torch.ones(3, 4, requires_grad=True)
    assert saved_for_backward(lambda: (x * w).sum()) == (2 * 3 * 4 * 4, 2)  # mul keeps both float32 factors
    assert saved_for_backward(lambda: (x * x).sum()) == (3 * 4 * 4, 2)  # one storage, saved twice
    with torch.no_grad():
        assert saved_for_backward(lambda: (x * w).sum()) == (0, 0)


def test_write_tables_writes_csv_and_markdown_and_returns_the_markdown(tmp_path):
    from rnnvision.bench.timing import BenchRow, write_tables

    rows = [BenchRow(group="g", name="n", shape="s", seconds=0.002, baseline="n", ratio=1.0)]
    text = write_tables(rows, tmp_path / "out", "stem", title="T", command="cmd")
    assert text == (tmp_path / "out" / "stem.md").read_text() and text.startswith("### T\n\nCommand: `cmd`")
    assert "| g | n | s | 2.00 | n | 1.00 |" in text
    assert len(list(csv.DictReader((tmp_path / "out" / "stem.csv").read_text().splitlines()))) == 1


def test_reading_errors_sort_wrong_readings_by_kind_and_length(monkeypatch):
    from rnnvision.bench.recognition import reading_errors
    from rnnvision.data import build_dataset
    from rnnvision.tasks import RecognitionTask

    data = build_dataset("digit-strings", split="test", source="sklearn", test_size=6, height=16)
    wrong_ways = [lambda t: t, lambda t: t[:-1], lambda t: t + "1", lambda t: ("0" if t[0] != "0" else "1") + t[1:]]
    monkeypatch.setattr(RecognitionTask, "log_probs", lambda self, model, batch: (batch["texts"], None))
    monkeypatch.setattr(
        RecognitionTask, "decode", lambda self, texts, _: [wrong_ways[k % 4](t) for k, t in enumerate(texts)]
    )
    found = reading_errors(torch.nn.Identity(), data.info.charset, data, limit=6, batch_size=4)  # batches of 4 and 2
    # per batch: item 0 read right, 1 lost, 2 gained, 3 misread; then 0 right, 1 lost
    assert found.count == 6 and dict(found.kinds) == {"lost": 2, "gained": 1, "misread": 1}
    assert sum(found.total.values()) == 6 and sum(found.wrong.values()) == 4 and len(found.examples) == 4
    assert all(" -> " in e for e in found.examples)


def test_step_split_projects_from_the_cached_pass():
    from rnnvision.bench.training import StepSplit

    split = StepSplit(
        steps=4, cold_load=3.0, cold_compute=1.0, cached_load=1.0, cached_compute=7.0, steps_per_epoch=10, epochs=90
    )
    assert split.step_seconds == 2.0 and split.cold_load_share == 0.75 and split.cached_load_share == 0.125
    assert split.epoch_seconds == 20.0 and split.schedule_hours == 0.5
