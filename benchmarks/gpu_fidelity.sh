#!/usr/bin/env bash
# The NAS-Bench-201 search comparison with real training (fidelity_search.py) on a GPU,
# with larger networks than the CPU rows: one prepared run of about 7 minutes.
#   bash benchmarks/gpu_fidelity.sh PATH/cifar10-jpeg.tar.xz OUT_DIR
# C=16, N=2 at 32x32, 10,000 training and 2,000 validation images, 9 epochs; 5 methods x
# 5 seeds, 75 s of wall clock per search, 5 searches sharing the GPU at once
# (25 x 75 s / 5 = 6.3 minutes plus start-up).  Resumable: a rerun continues.
set -uo pipefail
data=${1:?usage: gpu_fidelity.sh CIFAR10_ARCHIVE OUT_DIR}
out=${2:?usage: gpu_fidelity.sh CIFAR10_ARCHIVE OUT_DIR}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
python3 benchmarks/fidelity_search.py --device cuda --data "$data" --out "$out" \
    --channels 16 --cells-per-stage 2 --image-size 32 --train-images 10000 \
    --val-images 2000 --epochs 9 --seconds 75 --seeds 5 --workers 5
