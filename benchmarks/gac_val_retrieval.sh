#!/bin/bash
# Retrieval variants of a GaC checkpoint at inference, on held-out synthroom-val rooms (never synthroom), CPU or GPU.
#   bash benchmarks/gac_val_retrieval.sh [RUNS_DIR] [extra gac-bench options...]
# Four variants on forth-and-back (keep the most recent frame or not x context in time or overlap order) and two on
# the dataset trajectory, 3 rooms, 20 steps; one leaderboard in RUNS_DIR (default runs/val-retrieval).
set -u
R=${1:-runs/val-retrieval}; shift || true
COMMON=(--split synthroom-val --clips val00,val01,val02 --estimator none --runs-dir "$R" --option steps=20
        --option compile=false "$@")
variant() {  # NAME TRAJECTORY KEEP_RECENT ORDER
  gac-bench run --method gac --name "gac-$1" --trajectory "$2" "${COMMON[@]}" --option "keep_recent=$3" \
    --option "context_order=$4" || exit 1
}
variant time-recent forth-and-back true time
variant time-norecent forth-and-back false time
variant overlap-recent forth-and-back true overlap
variant overlap-norecent forth-and-back false overlap
variant time-recent dataset true time
variant time-norecent dataset false time
