#!/bin/bash
# Pre-training on several machines with torchrun: run this on every node, with the same arguments, from the
# repository root on a filesystem all nodes share (the run dir outputs/<name>/runs/<overrides>/ is relative to
# it), e.g. on 2 nodes of 8 GPUs:
#   NNODES=2 NPROC=8 RDZV=node1.cluster:29400 experiments/multinode/torchrun.sh tokenizer.path=/models/Llama-3.2-1B
# Rank zero (the first node to reach the rendezvous) creates the run dir's files and the W&B run; re-running
# the same command continues the run (resume=auto).
set -euo pipefail

: "${NNODES:?number of nodes}" "${NPROC:?processes (GPUs) per node}" "${RDZV:?host:port of the rendezvous (any node)}"
source .venv/bin/activate
export INFIR_CACHE="${INFIR_CACHE:-$PWD/cache}"

exec torchrun --nnodes="$NNODES" --nproc-per-node="$NPROC" --rdzv-backend=c10d --rdzv-endpoint="$RDZV" \
    --rdzv-id="${RDZV_ID:-infir}" train.py experiment=llama3_2_1b_pretrain \
    trainer=multinode trainer.num_nodes="$NNODES" trainer.devices="$NPROC" "$@"
