#!/usr/bin/env bash
# Distributed training with torchrun:
#   bash tools/dist_train.sh CONFIG GPUS [train.py arguments...]
# GPUS is the number of processes (one CUDA GPU each) on this node; see
# tools/dist_run.sh for the multi-node environment (NNODES, NODE_RANK,
# MASTER_ADDR, PORT, PYTHON).
set -e

if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py arguments...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" train.py "$2" "$1" "${@:3}"
