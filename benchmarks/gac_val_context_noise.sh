#!/bin/bash
# Noise-augmented context at inference (the gac method's context_t) on held-out synthroom-val rooms (never synthroom).
#   bash benchmarks/gac_val_context_noise.sh [RUNS_DIR] [T ...]
# For each flow time T (default 0 0.2 0.1): the shipped checkpoint on val00-val11, both trajectories, 12 Euler steps
# at shift 6 (the fast setting of results/gac/runs_2026-12-01_emit_geometry/), no pose estimate; one leaderboard in
# RUNS_DIR (default runs/val-context-noise). CPU: about 14 minutes per trajectory and T on 2 cores.
set -u
R=${1:-runs/val-context-noise}; shift || true
TS=("$@"); [ ${#TS[@]} -gt 0 ] || TS=(0 0.2 0.1)
CLIPS=val00,val01,val02,val03,val04,val05,val06,val07,val08,val09,val10,val11
for t in "${TS[@]}"; do
  for traj in dataset forth-and-back; do
    gac-bench run --method gac --name "gac-ctx$t" --split synthroom-val --clips "$CLIPS" --trajectory "$traj" \
      --estimator none --runs-dir "$R" --option steps=12 --option shift=6 --option compile=false \
      --option "context_t=$t" || exit 1
  done
done
