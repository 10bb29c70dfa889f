#!/usr/bin/env bash
# Distributed corruption-robustness testing with torchrun:
#   bash tools/dist_test_corruption.sh CONFIG CHECKPOINT GPUS \
#       [test_corruption.py arguments...]
# GPUS is the number of processes on this node; see tools/dist_run.sh for
# CPU runs and for the multi-node environment (NNODES, NODE_RANK,
# MASTER_ADDR, PORT, PYTHON).
set -e

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS" \
        "[test_corruption.py arguments...]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" test_corruption.py "$3" "$1" "$2" \
    "${@:4}"
