#!/bin/bash
# The paper's ablations (Tables 3-6) at small scale on the lent GPU machine (issue 12). Every run a table needs is
# trained with the same recipe and budget (STEPS optimiser steps of PACK tokens, the shipped VAE) once per seed of
# SEEDS (default: SEED), spread over the GPUs, then scored by the harness on held-out synthroom-val rooms (never
# synthroom) with pose errors from the weight-free colmap estimator, then written as tables. Run from the repository
# root:
#
#   bash benchmarks/gac_ablations.sh setup             # wheels from .whl/ (carry it), editable install, render rooms
#   bash benchmarks/gac_ablations.sh train [TABLE...]  # default: all four tables (7 runs)
#   bash benchmarks/gac_ablations.sh eval [TABLE...]
#   bash benchmarks/gac_ablations.sh tables [TABLE...] # results/ablations/table{N}.{csv,md} (here: $TABLES_OUT)
#   bash benchmarks/gac_ablations.sh all [TABLE...]    # the four stages: one command reruns a table, e.g. `all 5`
#   bash benchmarks/gac_ablations.sh pack              # logs, records (no frames) and tables into $OUT
#
# Several seeds, a subset of runs (train and eval; `tables` always reads every row of its tables, with whatever seeds
# the runs folder holds):
#   SEEDS=0,1,2 bash benchmarks/gac_ablations.sh train 6   # each run once per seed (default: SEEDS=$SEED, i.e. 0)
#   RUN_KEYS=warped,nodrop bash benchmarks/gac_ablations.sh train  # only these runs of the tables (exit 2 if a key is
#                                                                  # unknown or not in the tables)
# Seed 0 keeps the plain names: work dir $WORK/gac_KEY, method gac-abl-KEY, logs gac_KEY.log, eval_KEY_SHARD.log.
# Seed s > 0 adds _sS to dirs and logs (gac_ref_s1, gac_ref_s1_train_log.jsonl, eval_ref_s1_1.log) and -sS to the
# method (gac-abl-ref-s1); the tables average each room over a run's seeds (gac/ablations.py).
#
# Longer than one device command: start a stage detached and wait for its done-file in the next command (a pid
# can outlive its process there as an unreaped zombie, so `kill -0 PID` waits forever), e.g.
#   1st: setsid nohup bash benchmarks/gac_ablations.sh train > $WORK/logs/train_stage.log 2>&1 < /dev/null & sleep 560
#   2nd (within 30 s): while [ ! -e $WORK/train.done ]; do sleep 5; done; bash benchmarks/gac_ablations.sh eval ...
#
# Training validates on val16..val31 and the tables score the final checkpoint (not the best one) on val00..val11,
# so nothing is selected on the rooms that are scored. The runs and their flags are in gac/ablations.py.
set -u
WORK=${WORK:-/tmp/gac_abl}
mkdir -p "$WORK/logs"
export PYTHONUNBUFFERED=1 GAC_BENCH_HOME=${GAC_BENCH_HOME:-/tmp/gac_home} PYTHONPATH=$PWD:/tmp/site PYTHONWARNINGS=ignore
CLI='import baselines.identity, baselines.depth_warp, gac.method; from gac_bench.cli import main; main()'
PRESET=${PRESET:-gac-compact} STEPS=${STEPS:-1500} PACK=${PACK:-32768} SEED=${SEED:-0}
TIME_LIMIT=${TIME_LIMIT:-1500}  # a safety net only: a run it stops has fewer steps, which the tables report
VAE=${VAE:-gac/weights/synthroom/vae}
ROOMS=${ROOMS:-$(seq -f 'val%02g' -s, 0 11)}
VAL_ROOMS=${VAL_ROOMS:-$(seq -f 'val%02g' -s, 16 31)}
EVAL_SHARDS=${EVAL_SHARDS:-2}
TABLES_OUT=${TABLES_OUT:-results/ablations}
RECIPE=(--preset "$PRESET" --no-grid --pack-tokens "$PACK" --lr 6e-4 --warmup 200 --lr-decay cosine
        --pose-anchor last-context --max-gap 2 --revisit-prob 0.3 --context-noise 0.25)
GPUS=${GPUS:-$(python3 -c 'import torch; print(max(torch.cuda.device_count(), 1))')}

stage=${1:-all}; shift || true
rm -f "$WORK/$stage.done"
trap 'touch "$WORK/$stage.done"' EXIT  # written however the stage ends; its log says how
TABLES=("$@")
# one line per run and seed: KEY SEED TAG METHOD (TAG names dirs and logs: ref, ref_s1; METHOD: gac-abl-ref-s1)
SELECTED=$(python3 -m gac.ablations runs "${TABLES[@]}" --keys "${RUN_KEYS:-}" --seeds "${SEEDS:-$SEED}") || exit 2
mapfile -t RUNS <<< "$SELECTED"
[ -n "$SELECTED" ] || { echo "gac_ablations: no runs for tables ${TABLES[*]}"; exit 2; }

train_one() {  # KEY SEED TAG GPU
  local key=$1 seed=$2 tag=$3 gpu=$4 extra=() a
  while read -r a; do [ -n "$a" ] && extra+=("$a"); done < <(python3 -m gac.ablations train-args "$key")
  for a in ${TRAIN_EXTRA:-}; do extra+=("$a"); done  # e.g. TRAIN_EXTRA="--set latent_channels=32" for gac-tiny
  CUDA_VISIBLE_DEVICES=$gpu timeout $((TIME_LIMIT + 300)) python3 -m gac.train --split synthroom-train ${TRAIN_CLIPS:+--clips $TRAIN_CLIPS} \
    --val-split synthroom-val --val-clips "$VAL_ROOMS" --vae "$VAE" --out "$WORK/gac_$tag" --steps "$STEPS" \
    --time-limit "$TIME_LIMIT" --val-every 500 --val-psnr-clips 4 --log-every 50 --save-every 1000000 \
    --seed "$seed" "${RECIPE[@]}" "${extra[@]}" > "$WORK/logs/gac_$tag.log" 2>&1
  local rc=$?
  for f in train_log.jsonl val_log.jsonl; do cp "$WORK/gac_$tag/$f" "$WORK/logs/gac_${tag}_$f" 2>/dev/null; done
  echo "train $key seed $seed (GPU $gpu): rc $rc; $(tail -1 "$WORK/logs/gac_$tag.log" | cut -c1-160)"
}

eval_one() {  # KEY TAG METHOD GPU SHARD
  local key=$1 tag=$2 method=$3 gpu=$4 shard=$5 opts=() o
  while read -r o; do [ -n "$o" ] && opts+=(--option "$o"); done < <(python3 -m gac.ablations eval-options "$key")
  for o in ${EVAL_OPTS:-}; do opts+=(--option "$o"); done  # e.g. EVAL_OPTS="steps=2" for a smoke run
  CUDA_VISIBLE_DEVICES=$gpu timeout ${EVAL_TIMEOUT:-1200} python3 -c "$CLI" run --method gac --name "$method" \
    --split synthroom-val --clips "$ROOMS" --trajectory dataset --shard "$shard" --estimator "$ESTIMATOR" \
    --runs-dir "$WORK/runs" --device "${EVAL_DEVICE:-cuda}" --no-progress --option "checkpoint=$WORK/gac_$tag/last" "${opts[@]}" \
    > "$WORK/logs/eval_${tag}_${shard%/*}.log" 2>&1
  echo "eval $method shard $shard (GPU $gpu): rc $?"
}

case $stage in
setup)
  ls .whl/*.whl > /dev/null 2>&1 || { echo "setup: no wheels in .whl/ (carry it: run(..., carry=['.whl']))"; exit 1; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$WORK/logs/gpu.txt"
  python3 -c "import torch, diffusers, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'gpus', torch.cuda.device_count(), 'cores', len(__import__('os').sched_getaffinity(0)))" | tee -a "$WORK/logs/gpu.txt" \
    || { echo "setup: torch or diffusers does not import"; exit 1; }
  python3 -c "import pycolmap; print('pycolmap', pycolmap.__version__)" | tee -a "$WORK/logs/gpu.txt" \
    || echo "setup: no pycolmap: pose columns will be missing"
  t0=$(date +%s)
  for set in synthroom-val synthroom-train; do python3 -c "$CLI" data synthroom --set $set 2>&1 | tail -1; done
  echo "render: $(( $(date +%s) - t0 )) s" | tee "$WORK/logs/render.log"
  ;;
train)
  # every run's intra-op threads share the cores: 7 runs x all cores each oversubscribed them, and the warped-image
  # run's host-side warping ran at 12 s per step (results/ablations/README.md); runs x seeds train at once
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / ${#RUNS[@]} > 1 ? $(nproc) / ${#RUNS[@]} : 1 ))}
  i=0
  for run in "${RUNS[@]}"; do
    read -r key seed tag method <<< "$run"
    train_one "$key" "$seed" "$tag" $((i % GPUS)) & i=$((i + 1))
  done
  wait
  ;;
eval)
  ESTIMATOR=$(python3 -c "import pycolmap" 2>/dev/null && echo colmap || echo none)
  i=0
  for run in "${RUNS[@]}"; do
    read -r key seed tag method <<< "$run"
    for k in $(seq 1 "$EVAL_SHARDS"); do
      eval_one "$key" "$tag" "$method" $((i % GPUS)) "$k/$EVAL_SHARDS" & i=$((i + 1))
    done
  done
  wait
  python3 -c "$CLI" table --runs-dir "$WORK/runs" > "$WORK/logs/eval_leaderboard.log" 2>&1
  cp "$WORK/runs/leaderboard.md" "$WORK/logs/eval_leaderboard.md" 2>/dev/null
  ;;
tables)
  python3 -m gac.ablations tables "$WORK/runs" --train-logs "$WORK/logs" --out "$TABLES_OUT" \
    $(for t in "${TABLES[@]}"; do echo --table "$t"; done)
  ;;
all)
  bash "$0" setup && bash "$0" train "${TABLES[@]}" && bash "$0" eval "${TABLES[@]}" && bash "$0" tables "${TABLES[@]}"
  ;;
pack)
  (cd "$WORK" && tar -czf "$OUT/ablation_records.tgz" --exclude='*.png' --exclude='*.npy' --exclude='*.mp4' logs runs)
  ls -la "$OUT"
  ;;
*)
  echo "gac_ablations: unknown stage $stage (setup, train, eval, tables, all, pack)"; exit 2
  ;;
esac
