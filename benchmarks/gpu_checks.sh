#!/usr/bin/env bash
# The GPU checks of one short GPU lease, in order of priority, each step capped so the whole run ends
# in about nine minutes: CUDA correctness of every fast path (tests/test_cuda.py), the digit-scenes
# ReSeg recipe trained on the GPU (about 75 s on an H100), then the benchmark suite on the GPU, one
# family per process. Everything lands in OUT_DIR/gpu_checks.tgz (logs, results, best checkpoint).
# Left out because they do not fit one lease (H100 timings of 2026-11-27): the mdlstm_seg recipe
# (about 17 s per epoch, 9 minutes for its 30 epochs) and the pixelrnn family (over 140 s: its naive
# sampler runs the 7-layer network once per pixel).
#
#   benchmarks/gpu_checks.sh OUT_DIR        (repo root, on a machine with a CUDA device)
set -u
out=${1:?usage: benchmarks/gpu_checks.sh OUT_DIR}
work="$out/gpu_checks"
mkdir -p "$work"
tail_lines=4
source benchmarks/gpu_lib.sh
step 60 cuda_tests "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py
step 120 reseg "$py" -m rnnvision train configs/digit_scenes_reseg.yaml --out "$work/reseg" --quiet
# family:cap in seconds (about twice what each took on the H100)
for entry in minrnn:80 recurrent:40 renet:30 recognition:30 mdlstm:200; do
    suite=${entry%:*}
    step "${entry#*:}" "bench_$suite" "$py" -m rnnvision bench --suite "$suite" --device cuda --out "$work/bench_$suite"
done
rm -f "$work"/*/last.pt
tar -C "$out" -czf "$out/gpu_checks.tgz" gpu_checks && rm -rf "$work"
ls -la "$out"
