#!/bin/bash
# GaC measurements on the lent GPU machine (issue 5, items 10 and 11). Run from the repository root:
#   bash benchmarks/gac_gpu.sh synthroom throughput
# Stages write logs and JSON into $OUT (the device tool returns that folder). Each stage has its own time cap and
# a failing stage does not stop the next one. Needs the diffusers wheels in .whl/ (see gac/README.md).
set -u
OUT=${OUT:-/tmp/gac_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GAC_BENCH_HOME=/tmp/gac_home
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=$PWD:/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" | tee -a "$OUT/gpu.txt"
CKPT=runs/gac-small-synthroom
TRAIN_CLIPS=room00,room01,room02,room03,room04,room05
VAE_S=${VAE_S:-60}; TRAIN_S=${TRAIN_S:-170}

for stage in "$@"; do
  t0=$(date +%s)
  case $stage in
  synthroom)
    timeout 150 python3 -c "from gac_bench.datasets.synthroom import ensure_synthroom; print(ensure_synthroom(progress=False))" \
      2>&1 | tail -3 | tee "$OUT/render.log"
    timeout $((VAE_S + 60)) python3 -m gac.train_vae --split synthroom --clips $TRAIN_CLIPS --out /tmp/gac_vae \
      --time-limit "$VAE_S" 2>&1 | grep -v Warning | tail -5 | tee "$OUT/vae.log"
    cp /tmp/gac_vae/train_report.json "$OUT/vae_report.json"
    timeout $((TRAIN_S + 90)) python3 -m gac.train --preset gac-small --split synthroom --clips $TRAIN_CLIPS \
      --vae /tmp/gac_vae --out $CKPT --steps 100000 --time-limit "$TRAIN_S" --lr 5e-4 --warmup 200 \
      --max-stride 3 --attention dense --log-every 100 --save-every 100000 2>&1 | grep -v Warning | tail -8 | tee "$OUT/train.log"
    cp $CKPT/train_log.jsonl "$OUT/train_log.jsonl"
    timeout 150 python3 benchmarks/gac_generate_only.py --method gac --clips room06,room07 --runs-dir runs/gac-eval \
      --device cuda --option checkpoint=$CKPT/last 2>&1 | tail -30 > "$OUT/generate.log"
    tar -cf /tmp/eval_runs.tar runs/gac-eval && split -b 15m /tmp/eval_runs.tar "$OUT/eval_runs.tar.part-"
    ;;
  throughput-infer)
    timeout 120 python3 benchmarks/gac_throughput.py --skip-train --out "$OUT/throughput_infer.json" 2>&1 \
      | grep -v Warning | tail -40 | tee "$OUT/throughput_infer.log"
    ;;
  attention)
    timeout 120 python3 benchmarks/attention_backends.py --out "$OUT/attention.json" 2>&1 | grep -v Warning \
      | tee "$OUT/attention.log"
    ;;
  throughput-infer-compiled)
    timeout 300 python3 benchmarks/gac_throughput.py --skip-train --compile ${PROFILE:+--profile} \
      --out "$OUT/throughput_infer_compiled.json" 2>&1 | grep -v Warning | tail -${TAIL:-40} \
      | tee "$OUT/throughput_infer_compiled.log"
    ;;
  throughput-train)
    timeout ${TRAIN_TP_S:-200} python3 benchmarks/gac_throughput.py --skip-infer --out "$OUT/throughput_train.json" \
      2>&1 | grep -v Warning | tail -40 | tee "$OUT/throughput_train.log"
    ;;
  esac
  echo "stage $stage: $(( $(date +%s) - t0 )) s" | tee "$OUT/stage_$stage.txt"
  # at most 8 files come back: after every stage, small files go into one tar (so a cut-off run still returns them)
  (cd "$OUT" && tar -rf logs.tar --remove-files $(ls | grep -v -e '^eval_runs' -e '^logs.tar$'))
done
ls -la "$OUT"
