#!/usr/bin/env bash
# The long-range GPU checks of issue 12, for one short GPU lease, in two parts (PART=checks, PART=trainings,
# or PART=all for both in that order; each fits one call of about nine minutes):
# - checks: the LRU's scan and matmul form on CUDA against its complex loop on the CPU (tests/test_cuda.py
#   -k lru), then the LRU step timed on the GPU (scan, matmul form, loop, torch.nn.LSTM; float32 and bf16;
#   the pixel_lru training step), each alone;
# - trainings, side by side on the one GPU until DEADLINE_S seconds after the start (on a GPU the LRU's
#   step is launch-bound: 66-69 ms at batch 32 and 256 alike on an H200, and runs side by side did not
#   slow each other there): mnist_pixel_lstm in all three stages of its recipe (benchmarks/train_stages.py,
#   42 epochs; the first stage took 54 s on an H200), and permuted MNIST with pixel_lru at batch 256 for
#   24 epochs with 1-pixel shifts and dropout 0.1, as the recipe is and twice as wide, for the >= 97.5 %
#   stretch. A training stopped by the deadline keeps its best.pt (evaluate it with `rnnvision eval`).
# Everything lands in OUT_DIR/gpu_long_range.tgz (logs, metrics, best checkpoints).
#
#   PART=trainings DEADLINE_S=540 benchmarks/gpu_long_range.sh OUT_DIR DATA_DIR    (repo root, with a CUDA device)
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
part=${PART:-all}
case $part in checks | trainings | all) ;; *) echo "PART must be checks, trainings or all, got $part" >&2; exit 2 ;; esac

if [ "$part" != trainings ]; then
    step 90 cuda_tests "$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py -k lru
    bench=("$py" benchmarks/bench_lru.py --device cuda --batch 32 --steps 784 --min-seconds 0.5 --repeats 5)
    step 60 bench_lru_float32 "${bench[@]}"
    step 60 bench_lru_bf16 "${bench[@]}" --bf16
    step 60 bench_lru_model_b32 "${bench[@]}" --model pixel_lru
    step 60 bench_lru_model_b256 "${bench[@]}" --model pixel_lru --batch 256
fi

runs=()
if [ "$part" != checks ]; then
    left=$((deadline - ($(date +%s) - started)))
    echo "== trainings start $(date +%T), ${left} s left"
    train() {  # train NAME CONFIG [--set ...]: one recipe in the background, stopped at the deadline
        local name=$1 config=$2
        shift 2
        runs+=("$name")
        timeout "$left" "$py" -m rnnvision train "$config" --out "$work/$name" --data-dir "$data" --quiet "$@" \
            > "$work/$name.log" 2>&1 &
    }
    if [ "$left" -gt 60 ]; then
        permuted=(--set train.batch_size=256 --set train.lr=0.004 --set train.warmup_epochs=1 --set train.epochs=24
            --set data.max_shift=1 --set model.dropout=0.1)
        train permuted_b256 configs/permuted_mnist_pixel_lru.yaml "${permuted[@]}"
        train permuted_wide_b256 configs/permuted_mnist_pixel_lru.yaml "${permuted[@]}" \
            --set model.hidden_size=128 --set model.state_size=256
        timeout "$left" "$py" benchmarks/train_stages.py configs/mnist_pixel_lstm.yaml --out "$work/pixel_lstm" \
            --data-dir "$data" --quiet > "$work/pixel_lstm.log" 2>&1 &
        runs+=(pixel_lstm/stage1 pixel_lstm/stage2 pixel_lstm/stage3)
        wait
    fi
    echo "== trainings end $(date +%T)"
fi
for run in "${runs[@]}"; do
    echo "-- $run"
    tail -n 3 "$work/${run%%/*}.log"
    cat "$work/$run/results.json" 2>/dev/null || tail -n 2 "$work/$run/metrics.jsonl" 2>/dev/null
    echo
done
rm -f "$work"/*/last.pt
tar -C "$out" -czf "$out/gpu_long_range.tgz" gpu_long_range && rm -rf "$work"
ls -la "$out"
