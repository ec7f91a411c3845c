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
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
"$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "gpu_checks.sh: no CUDA device here")' || exit 2

step() {  # step SECONDS NAME COMMAND...: run COMMAND under a time cap, log to NAME.log, show its tail
    local limit=$1 name=$2
    shift 2
    echo "== $name start $(date +%T)"
    timeout "$limit" "$@" > "$work/$name.log" 2>&1
    echo "== $name rc=$? end $(date +%T)"
    tail -n 4 "$work/$name.log"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } | tee "$work/machine.txt"
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
