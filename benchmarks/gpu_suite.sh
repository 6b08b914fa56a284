#!/usr/bin/env bash
# Every GPU check in one go (for a machine lent for a few minutes):
#   bash benchmarks/gpu_suite.sh PATH/cifar10-jpeg.tar.xz [ONESHOT_MINUTES]
# 1. gpu_check.py: a small search on CUDA (issue: foundation)
# 2. gpu_packing.py: 1, 2, 4, 8 trials per GPU through the processes executor
# 3. oneshot_nb201.py --preset gpu-8min: GDAS on NAS-Bench-201 / CIFAR-10, capped at
#    ONESHOT_MINUTES (default: the preset's 6.5) and looked up in the table
set -uo pipefail
data=${1:?usage: gpu_suite.sh CIFAR10_ARCHIVE [ONESHOT_MINUTES]}
minutes=${2:-6.5}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "== gpu_check"; python3 benchmarks/gpu_check.py --trials 6
echo "== gpu_packing"; python3 benchmarks/gpu_packing.py --data "$data" --train-images 8000 --epochs 1
echo "== oneshot gdas"; python3 benchmarks/oneshot_nb201.py --device cuda --preset gpu-8min \
    --method gdas --seeds 0 --data "$data" --set "max_minutes=$minutes"
