# Shared by the GPU lease scripts (gpu_checks.sh, gpu_long_range.sh); sourced after they set $work
# (the folder for logs) and $tail_lines (how much of each log to show).
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
"$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device here")' || exit 2

step() {  # step SECONDS NAME COMMAND...: run COMMAND under a time cap, log to NAME.log, show its tail
    local limit=$1 name=$2
    shift 2
    echo "== $name start $(date +%T)"
    timeout "$limit" "$@" > "$work/$name.log" 2>&1
    echo "== $name rc=$? end $(date +%T)"
    tail -n "$tail_lines" "$work/$name.log"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } | tee "$work/machine.txt"
