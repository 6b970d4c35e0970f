#!/bin/bash
# GaC on synthroom, end to end on the lent GPU machine (issue 10): render the training, validation and evaluation
# rooms on every core, train stand-in VAEs, train GaC, evaluate it with the harness. Run from the repository root:
#
#   bash benchmarks/gac_synthroom.sh setup render            # once per machine
#   bash benchmarks/gac_synthroom.sh vae NAME CHANNELS WIDTH BLOCKS SECONDS GPU   # the patch VAE
#   bash benchmarks/gac_synthroom.sh gac NAME VAE GPU SECONDS [gac.train options...]
#   bash benchmarks/gac_synthroom.sh eval NAME GPU CLIPS [method options...]
#
# Everything is written under $WORK (default /tmp/gac): logs/, vae_NAME/, gac_NAME/, eval_NAME/. `pack` copies the
# small results into $OUT (the device tool brings that folder back) and splits checkpoints into 15 MB parts.
# Needs the diffusers, importlib_metadata, lpips and torch-fidelity wheels in .whl/ (see gac/README.md).
set -u
WORK=${WORK:-/tmp/gac}
mkdir -p "$WORK/logs"
export PYTHONUNBUFFERED=1 GAC_BENCH_HOME=${GAC_BENCH_HOME:-/tmp/gac_home} PYTHONPATH=$PWD:/tmp/site
export PYTHONWARNINGS=ignore
# the CLI with the built-in methods imported, so they resolve also where the package is not pip-installed
CLI='import baselines.identity, baselines.depth_warp, gac.method; from gac_bench.cli import main; main()'

stage=$1; shift
case $stage in
setup)
  # the wheels travel only when the device call names .whl in `carry`; without them evaluation cannot run
  ls .whl/*.whl > /dev/null 2>&1 || { echo "setup: no wheels in .whl/ (carry it: run(..., carry=['.whl']))"; exit 1; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . > "$WORK/logs/pip_e.log" 2>&1 \
    || echo "editable install failed (methods are registered by import instead)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$WORK/logs/gpu.txt"
  python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, \
'gpus', torch.cuda.device_count(), 'cores', len(__import__('os').sched_getaffinity(0)))" > "$WORK/logs/gpu_py.txt" \
    || { echo "setup: torch or diffusers does not import"; exit 1; }
  tee -a "$WORK/logs/gpu.txt" < "$WORK/logs/gpu_py.txt"
  ;;
render)
  t0=$(date +%s)
  for set in synthroom-val synthroom-train synthroom; do
    python3 -m gac_bench.cli data synthroom --set $set 2>&1 | tail -1
  done | tee "$WORK/logs/render.log"
  echo "render: $(( $(date +%s) - t0 )) s" | tee -a "$WORK/logs/render.log"
  ;;
vae)
  name=$1 ch=$2 width=$3 lpb=$4 secs=$5 gpu=$6
  CUDA_VISIBLE_DEVICES=$gpu timeout $((secs + 240)) python3 -m gac.train_vae --split synthroom-train ${TRAIN_CLIPS:+--clips $TRAIN_CLIPS} \
    --val-split synthroom-val ${VAL_CLIPS:+--val-clips $VAL_CLIPS} --frame-stride 4 --out "$WORK/vae_$name" --latent-channels "$ch" --width-mult "$width" \
    --arch ${VAE_ARCH:-patch} --layers-per-block "$lpb" --batch ${VAE_BATCH:-64} --lr ${VAE_LR:-5e-4} --time-limit "$secs" \
    --normalization ${VAE_NORM:-channel} > "$WORK/logs/vae_$name.log" 2>&1
  cp "$WORK/vae_$name/train_report.json" "$WORK/logs/vae_${name}_report.json" 2>/dev/null
  tail -2 "$WORK/logs/vae_$name.log"
  ;;
gac)
  name=$1 vae=$2 gpu=$3 secs=$4; shift 4
  CUDA_VISIBLE_DEVICES=$gpu timeout $((secs + 300)) python3 -m gac.train --split synthroom-train ${TRAIN_CLIPS:+--clips $TRAIN_CLIPS} \
    --val-split synthroom-val ${VAL_CLIPS:+--val-clips $VAL_CLIPS} --vae "$WORK/vae_$vae" --out "$WORK/gac_$name" --steps 1000000 --time-limit "$secs" \
    --log-every 100 --save-every 1000000 "$@" > "$WORK/logs/gac_$name.log" 2>&1
  for f in train_log.jsonl val_log.jsonl curves.png; do cp "$WORK/gac_$name/$f" "$WORK/logs/gac_${name}_$f" 2>/dev/null; done
  tail -3 "$WORK/logs/gac_$name.log"
  ;;
eval)
  name=$1 gpu=$2 clips=$3; shift 3
  ckpt="$WORK/gac_${name%%+*}/best"
  [ -d "$ckpt" ] || ckpt="$WORK/gac_${name%%+*}/last"
  opts=(--option "checkpoint=$ckpt")
  for o in "$@"; do opts+=(--option "$o"); done
  # SHARDS=n: n processes share the GPU (clips k, k+n, ...), then one table over their records
  n=${SHARDS:-1}
  for k in $(seq 1 "$n"); do
    CUDA_VISIBLE_DEVICES=$gpu timeout ${EVAL_TIMEOUT:-900} python3 -c "$CLI" run --method gac --split synthroom --clips "$clips" \
      --shard "$k/$n" --estimator none --runs-dir "$WORK/eval_$name" --device ${EVAL_DEVICE:-cuda} "${opts[@]}" \
      > "$WORK/logs/eval_${name}_$k.log" 2>&1 &
  done
  wait
  cat "$WORK"/logs/eval_${name}_*.log > "$WORK/logs/eval_$name.log"
  [ "$n" = 1 ] || python3 -c "$CLI" table --runs-dir "$WORK/eval_$name" >> "$WORK/logs/eval_$name.log" 2>&1
  cp "$WORK/eval_$name/leaderboard.md" "$WORK/logs/eval_${name}_leaderboard.md" 2>/dev/null
  cp "$WORK/eval_$name/leaderboard.csv" "$WORK/logs/eval_${name}_leaderboard.csv" 2>/dev/null
  python3 - "$WORK/eval_$name" > "$WORK/logs/eval_${name}_timing.json" <<'EOF'
import json, sys
from pathlib import Path
rows = []
for g in sorted(Path(sys.argv[1]).glob("synthroom/*/*/*/generation.json")):
    r = json.loads(g.read_text())
    rows.append({k: r.get(k) for k in ("clip_id", "trajectory", "status", "wall_time_s", "error")} | {"info": r.get("info")})
print(json.dumps(rows, indent=1))
EOF
  tail -4 "$WORK/logs/eval_$name.log"
  ;;
baselines)
  clips=$1
  timeout 600 python3 -c "$CLI" run --method identity --method depth-warp --split synthroom --clips "$clips" \
    --estimator none --runs-dir "$WORK/eval_baselines" > "$WORK/logs/eval_baselines.log" 2>&1
  cp "$WORK/eval_baselines/leaderboard.md" "$WORK/logs/eval_baselines_leaderboard.md" 2>/dev/null
  cp "$WORK/eval_baselines/leaderboard.csv" "$WORK/logs/eval_baselines_leaderboard.csv" 2>/dev/null
  ;;
pack)
  # small files in one tar (logs, eval records without frames, room00 frames of the first eval); then the checkpoint
  # chosen on held-out validation (first-grid PSNR on synthroom-val, never on synthroom), bf16, in 15 MB parts
  names=("$@")
  [ ${#names[@]} -gt 0 ] || names=($(python3 benchmarks/gac_choose.py "$WORK"))
  echo "${names[*]:-}" > "$WORK/logs/shipped.txt"
  (cd "$WORK" && tar -czf "$OUT/logs.tgz" --exclude='*.png' --exclude='*.npy' logs $(ls -d eval_* 2>/dev/null) && \
     tar -czf "$OUT/pictures.tgz" logs/*.png $(ls -d eval_*/synthroom/dataset/*/room00/frames 2>/dev/null | head -1))
  for name in "${names[@]}"; do
    [ -n "$name" ] || continue
    ckpt="$WORK/gac_$name/best"
    [ -d "$ckpt" ] || ckpt="$WORK/gac_$name/last"
    python3 -m gac.export "$ckpt" "$WORK/export_$name" --dtype bf16 && \
      (cd "$WORK" && tar -cf "export_$name.tar" "export_$name" && split -b 15m "export_$name.tar" "$OUT/ckpt_$name.tar.part-")
  done
  ls -la "$OUT"
  ;;
esac
