#!/bin/bash
# The GPU sessions of issue 10, as run (see results/gac/README.md). Usage: bash benchmarks/gac_synthroom_plan.sh PLAN
#   probe  1 GPU, 8 minutes: data, two VAE sizes, two short GaC recipes side by side, one evaluated clip
#   main2  2 GPUs: VAE, then the recipe (GPU 0) and the paper's defaults (GPU 1) on the same budget, then synthroom
#   main1  1 GPU: the same with the recipe only
# Stage outputs land in $WORK/logs; `bash benchmarks/gac_synthroom.sh pack NAME` brings them back.
set -u
S="bash benchmarks/gac_synthroom.sh"
plan=$1
ALL=room00,room01,room02,room03,room04,room05,room06,room07
PRESET=${PRESET:-gac-compact}
COMMON="--preset $PRESET --pack-tokens ${PACK:-65536} --lr ${LR:-6e-4} --warmup 200 --lr-decay cosine --val-every ${VAL_EVERY:-400} --val-psnr-clips 4 ${GAC_EXTRA:-}"
RECIPE="--pose-anchor last-context --max-gap 2 --revisit-prob 0.3 --context-noise 0.25"
echo "plan $plan start $(date -u +%FT%TZ)"
case $plan in
probe)
  $S setup && $S render
  $S vae c16 16 48 1 ${VAE_S:-150} 0 & $S vae c32 32 48 1 ${VAE_S:-150} 0 & wait
  $S gac paper c16 0 ${GAC_S:-120} $COMMON &
  $S gac recipe c16 0 ${GAC_S:-120} $COMMON $RECIPE &
  wait
  $S eval recipe 0 room00 steps=25 compile=false
  ;;
main2)
  $S setup && $S render
  $S vae c32 32 256 4 ${VAE_S:-100} 0 & $S vae c16 16 256 4 ${VAE_S:-100} 1 & wait
  $S gac recipe c32 0 ${GAC_S:-480} $COMMON $RECIPE & $S gac paper c32 1 ${GAC_S:-480} $COMMON & wait
  ( $S eval recipe 0 ${CLIPS:-$ALL} compile=false; $S eval paper 0 ${CLIPS:-$ALL} compile=false ) &
  $S eval recipe+geo 1 ${CLIPS:-$ALL} compile=false emit_geometry=true &
  wait
  ;;
main1)
  $S setup && $S render
  $S vae c32 32 256 4 ${VAE_S:-100} 0
  $S gac recipe c32 0 ${GAC_S:-480} $COMMON $RECIPE
  $S eval recipe 0 ${CLIPS:-$ALL} compile=false
  $S eval recipe+geo 0 ${CLIPS:-$ALL} compile=false emit_geometry=true
  ;;
esac
echo "plan $plan done $(date -u +%FT%TZ)"
# summary for the caller (the device tool returns the last lines of output)
W=${WORK:-/tmp/gac}
for f in "$W"/logs/vae_*_report.json; do echo "$f"; grep -E '"(steps|seconds|parameters|val_psnr_db|val_psnr_depth_db|train_psnr_db)"' "$f"; done
for f in "$W"/logs/gac_*.log; do echo "$f"; grep -E "model |loaded|latents|val step|time limit|WARNING|Error|error" "$f" | tail -8; done
for f in "$W"/logs/eval_*.log; do echo "$f"; tail -3 "$f"; done
