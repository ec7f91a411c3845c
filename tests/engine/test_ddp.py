"""Data-parallel training under torchrun: 2 CPU processes (gloo) on a tiny config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from rnnvision.config import config_from_dict
from rnnvision.engine import train

CONFIG = {
    "model": {"name": "row_gru", "hidden_size": 16, "head_hidden": 16, "dropout": 0.0},
    "data": {"name": "digits"},
    # with a moving average of the weights: the returned (averaged) weights follow the whole trajectory
    "train": {"epochs": 2, "batch_size": 64, "lr": 0.01, "device": "cpu", "seed": 5, "ema_decay": 0.9},
}


def test_two_processes_end_identical_match_one_process_and_only_rank0_writes(tmp_path):
    env = {**os.environ, "DDP_TEST_CONFIG": json.dumps(CONFIG), "OMP_NUM_THREADS": "1"}
    worker = Path(__file__).with_name("ddp_worker.py")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(worker),
        str(tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[1]["written"] == []  # rank 1 opened nothing for writing in the run directory
    assert reports[0]["test"] == reports[1]["test"]  # sharded evaluation, summed over both ranks
    assert reports[0]["test"]["n"] == 360
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]  # written once, not once per rank

    # The global batch is split evenly, so two processes take the same steps as one.
    single = train(config_from_dict(CONFIG), out_dir=tmp_path / "single", quiet=True)
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ranks[0][key], value, atol=1e-5, rtol=1e-4)
