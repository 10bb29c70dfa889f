#!/usr/bin/env bash
# Distributed testing with torchrun:
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments...]
# GPUS is the number of processes (one CUDA GPU each) on this node; see
# tools/dist_run.sh for the multi-node environment (NNODES, NODE_RANK,
# MASTER_ADDR, PORT, PYTHON).
set -e

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py arguments...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" test.py "$3" "$1" "$2" "${@:4}"
