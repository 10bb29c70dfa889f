#!/usr/bin/env bash
# The torchrun launch behind dist_train.sh and dist_test.sh:
#   bash tools/dist_run.sh SCRIPT GPUS [SCRIPT arguments...]
# runs tools/SCRIPT in GPUS processes on this node with --launcher pytorch.
# train.py and test.py are mmseg's and need one CUDA GPU per process;
# test_corruption.py also runs on CPU-only machines (gloo).
# Multi-node runs read NNODES, NODE_RANK, MASTER_ADDR and PORT from the
# environment, e.g. on each of two nodes:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh ...
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash tools/dist_train.sh ...
# PYTHON selects the interpreter (default: python on PATH).
set -e

SCRIPT=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" \
    --launcher pytorch "${@:3}"
