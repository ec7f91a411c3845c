#!/usr/bin/env bash
# The long-range GPU checks of issue 12, for one short GPU lease (about nine minutes), in order:
# the LRU's scan and matmul form on CUDA against its complex loop on the CPU (tests/test_cuda.py -k lru),
# the LRU step timed on the GPU (scan, matmul form, loop, torch.nn.LSTM; float32 and bf16; the pixel_lru
# training step), each alone; then three pixel-MNIST recipes trained side by side on the one GPU until DEADLINE_S seconds
# after the start: the LRU recipes at batch 256 (on a GPU the LRU's step is launch-bound: it cost
# 66-69 ms at batch 32 and 256 alike on an H200), and mnist_pixel_lstm as it is. A training stopped by the
# deadline keeps its best.pt (evaluate it with `rnnvision eval`). Everything lands in
# OUT_DIR/gpu_long_range.tgz (logs, metrics, best checkpoints).
#
#   benchmarks/gpu_long_range.sh OUT_DIR DATA_DIR    (repo root, on a machine with a CUDA device)
set -u
out=${1:?usage: benchmarks/gpu_long_range.sh OUT_DIR DATA_DIR}
data=${2:?usage: benchmarks/gpu_long_range.sh OUT_DIR DATA_DIR}
deadline=${DEADLINE_S:-540}
started=$(date +%s)
work="$out/gpu_long_range"
mkdir -p "$work"
export OMP_NUM_THREADS=2
tail_lines=12
source benchmarks/gpu_lib.sh
step 90 cuda_tests "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py -k lru
bench=("$py" benchmarks/bench_lru.py --device cuda --batch 32 --steps 784 --min-seconds 0.5 --repeats 5)
step 60 bench_lru_float32 "${bench[@]}"
step 60 bench_lru_bf16 "${bench[@]}" --bf16
step 60 bench_lru_model_b32 "${bench[@]}" --model pixel_lru
step 60 bench_lru_model_b256 "${bench[@]}" --model pixel_lru --batch 256

left=$((deadline - ($(date +%s) - started)))
echo "== trainings start $(date +%T), ${left} s left"
train() {  # train NAME CONFIG [--set ...]: one recipe in the background, stopped at the deadline
    local name=$1 config=$2
    shift 2
    timeout "$left" "$py" -m rnnvision train "$config" --out "$work/$name" --data-dir "$data" "$@" \
        > "$work/$name.log" 2>&1 &
}
big=(--set train.batch_size=256 --set train.lr=0.004 --set train.warmup_epochs=1)
if [ "$left" -gt 60 ]; then
    train permuted_lru_b256 configs/permuted_mnist_pixel_lru.yaml "${big[@]}" --set train.epochs=15
    train sequential_lru_b256 configs/mnist_pixel_lru.yaml "${big[@]}" --set train.epochs=12
    train pixel_lstm configs/mnist_pixel_lstm.yaml
    wait
fi
echo "== trainings end $(date +%T)"
for run in permuted_lru_b256 sequential_lru_b256 pixel_lstm; do
    echo "-- $run"
    tail -n 3 "$work/$run.log"
    cat "$work/$run/results.json" 2>/dev/null || tail -n 2 "$work/$run/metrics.jsonl" 2>/dev/null
    echo
done
rm -f "$work"/*/last.pt
tar -C "$out" -czf "$out/gpu_long_range.tgz" gpu_long_range && rm -rf "$work"
ls -la "$out"
