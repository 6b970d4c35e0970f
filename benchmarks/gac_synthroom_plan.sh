#!/bin/bash
# The GPU sessions of issue 10 (results/gac/README.md). Usage: bash benchmarks/gac_synthroom_plan.sh PLAN
#   probe  1 GPU, 8 minutes: data, two VAE sizes, two short GaC recipes side by side, one evaluated clip
#   main2  2 GPUs, about 19 minutes: data, the patch VAE, then the recipe (GPU 0) and the paper's defaults (GPU 1)
#          trained side by side on the same budget, then both evaluated on synthroom
#   main1  1 GPU: the same with the recipe only
#   search1  1 GPU, about 20 minutes: data, two patch VAEs (per-channel and global latent scale) at once, three
#          recipes sharing the GPU on the same budget (CGA with each VAE, addition with the global one), the one
#          with the best held-out first-grid PSNR (synthroom-val) evaluated on synthroom, RGB-only on 8 rooms and
#          with geometry generated on 4, in sharded processes
#   nogrid1  1 GPU, about 22 minutes: data, the globally scaled VAE, the recipe with one view per frame (--no-grid,
#          ten times faster to learn than grids from scratch, results/gac/README.md) for 600 s, evaluation, pack
#   nogrid2  2 GPUs: the same, CGA on GPU 0 and addition on GPU 1 on the same budget
# Longer than one device command (10 minutes): start it detached and wait for it in a second command, e.g.
#   1st: export WORK=/tmp/gac; mkdir -p $WORK/logs; setsid nohup bash benchmarks/gac_synthroom_plan.sh main2 \
#          > $WORK/logs/plan.log 2>&1 < /dev/null & sleep 570; tail $WORK/logs/plan.log
#   2nd (within 30 s, while the machine is warm): while pgrep -f gac_synthroom_plan >/dev/null; do sleep 5; done;
#          bash benchmarks/gac_synthroom.sh pack
# Stage outputs land in $WORK/logs; `pack` brings back logs and the checkpoint chosen on synthroom-val.
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
  export VAE_ARCH=kl VAE_LR=1e-3 VAE_BATCH=32  # the AutoencoderKL stand-in, as run on 2026-11-30
  $S vae c16 16 48 1 ${VAE_S:-150} 0 & $S vae c32 32 48 1 ${VAE_S:-150} 0 & wait
  $S gac paper c16 0 ${GAC_S:-120} $COMMON &
  $S gac recipe c16 0 ${GAC_S:-120} $COMMON $RECIPE &
  wait
  $S eval recipe 0 room00 steps=25 compile=false
  ;;
main2)
  $S setup && $S render
  $S vae c32 32 256 4 ${VAE_S:-100} 0
  $S gac recipe c32 0 ${GAC_S:-600} $COMMON $RECIPE & $S gac paper c32 1 ${GAC_S:-600} $COMMON & wait
  ( $S eval recipe 0 ${CLIPS:-$ALL}; $S eval paper 0 ${CLIPS:-$ALL} ) &
  $S eval recipe+geo 1 ${CLIPS:-$ALL} emit_geometry=true &
  wait
  ;;
main1)
  $S setup && $S render
  $S vae c32 32 256 4 ${VAE_S:-100} 0
  $S gac recipe c32 0 ${GAC_S:-600} $COMMON $RECIPE
  $S eval recipe 0 ${CLIPS:-$ALL}
  $S eval recipe+geo 0 ${CLIPS:-$ALL} emit_geometry=true
  ;;
search1)
  $S setup && $S render
  VAE_NORM=channel $S vae c32 32 256 4 ${VAE_S:-100} 0 & VAE_NORM=global $S vae g32 32 256 4 ${VAE_S:-100} 0 & wait
  $S gac cga_c32 c32 0 ${GAC_S:-600} $COMMON $RECIPE &
  $S gac cga_g32 g32 0 ${GAC_S:-600} $COMMON $RECIPE &
  $S gac add_g32 g32 0 ${GAC_S:-600} $COMMON $RECIPE --camera add &
  wait
  best=$(python3 benchmarks/gac_choose.py "${WORK:-/tmp/gac}")
  echo "chosen on synthroom-val: $best"
  SHARDS=4 $S eval "$best" 0 ${CLIPS:-$ALL} &
  SHARDS=2 $S eval "$best+geo" 0 room00,room01,room02,room03 emit_geometry=true &
  wait
  ;;
nogrid1|nogrid2)
  $S setup && $S render
  VAE_NORM=global $S vae g32 32 256 4 ${VAE_S:-100} 0
  $S gac nogrid g32 0 ${GAC_S:-600} $COMMON $RECIPE --no-grid &
  [ "$plan" = nogrid2 ] && $S gac nogrid_add g32 1 ${GAC_S:-600} $COMMON $RECIPE --no-grid --camera add &
  wait
  # geometry skipped on all 8 rooms, generated (variant #1) on rooms 0-3: six processes share the GPU(s)
  SHARDS=4 $S eval nogrid 0 ${CLIPS:-$ALL} &
  geo_gpu=0
  [ "$plan" = nogrid2 ] && geo_gpu=1
  SHARDS=2 $S eval nogrid+geo $geo_gpu room00,room01,room02,room03 emit_geometry=true &
  wait
  ;;
esac
echo "plan $plan done $(date -u +%FT%TZ)"
# summary for the caller (the device tool returns the last lines of output)
W=${WORK:-/tmp/gac}
for f in "$W"/logs/vae_*_report.json; do echo "$f"; grep -E '"(steps|seconds|parameters|val_psnr_db|val_psnr_depth_db|train_psnr_db)"' "$f"; done
for f in "$W"/logs/gac_*.log; do echo "$f"; grep -E "model |loaded|latents|val step|time limit|WARNING|Error|error" "$f" | tail -8; done
for f in "$W"/logs/eval_*.log; do echo "$f"; tail -3 "$f"; done
