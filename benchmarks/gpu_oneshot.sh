#!/usr/bin/env bash
# Several one-shot NAS-Bench-201 searches side by side on one GPU, one process each, for a
# GPU lent for a few minutes (one search leaves most of an H200 idle: its small kernels
# are bound by Python and kernel launches, so packing raises the searches done per minute).
#
#   bash benchmarks/gpu_oneshot.sh ARCHIVE OUTDIR MINUTES JOB [JOB ...]
#
# JOB is METHOD:SEED or METHOD:SEED:KEY=VALUE,KEY=VALUE (oneshot_nb201.py's --set), e.g.
#   bash benchmarks/gpu_oneshot.sh .data/cifar10-jpeg.tar.xz out 7.5 gdas:0:epochs=50 darts:0
# Each job runs `oneshot_nb201.py --device $DEVICE --preset $PRESET` (defaults cuda and
# gpu-8min) with 2 CPU threads and the time guard at MINUTES, logging to
# OUTDIR/METHOD_sSEED.log; GPU use is sampled every 30 s into OUTDIR/gpu_use.csv, and the
# result rows of all jobs are gathered into OUTDIR/summary.md.
set -uo pipefail
archive=${1:?usage: gpu_oneshot.sh ARCHIVE OUTDIR MINUTES JOB [JOB ...]}
outdir=${2:?usage: gpu_oneshot.sh ARCHIVE OUTDIR MINUTES JOB [JOB ...]}
minutes=${3:?usage: gpu_oneshot.sh ARCHIVE OUTDIR MINUTES JOB [JOB ...]}
shift 3
device=${DEVICE:-cuda}
preset=${PRESET:-gpu-8min}
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONUNBUFFERED=1
mkdir -p "$outdir"

if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 30 \
        >"$outdir/gpu_use.csv" 2>&1 &
    sampler=$!
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
# Decode the archive once, so the jobs read the cache instead of decoding it side by side.
python3 -c "import sys; from archsearch.data import load_dataset; load_dataset(sys.argv[1])" \
    "$archive" || exit 1

pids=()
logs=()
for job in "$@"; do
    IFS=: read -r method seed sets <<<"$job"
    args=(--device "$device" --preset "$preset" --method "$method" --seeds "$seed"
          --threads 2 --data "$archive" --set "max_minutes=$minutes")
    if [ -n "${sets:-}" ]; then
        IFS=, read -r -a pairs <<<"$sets"
        for pair in "${pairs[@]}"; do args+=(--set "$pair"); done
    fi
    log="$outdir/${method}_s${seed}.log"
    echo "start $job -> $log"
    python3 "$here/oneshot_nb201.py" "${args[@]}" >"$log" 2>&1 &
    pids+=($!)
    logs+=("$log")
done

status=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "FAILED: ${logs[$i]}"; tail -5 "${logs[$i]}"; status=1; }
done
[ -n "${sampler:-}" ] && kill "$sampler" 2>/dev/null

{
    echo "| method | seed | derived cell | NB201 test % | search s | epochs |"
    echo "|---|---|---|---|---|---|"
    for log in "${logs[@]}"; do grep -h '^| [a-z]' "$log" | grep -v '^| method'; done
} >"$outdir/summary.md"
cat "$outdir/summary.md"
exit $status
