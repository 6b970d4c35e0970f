#!/bin/bash
# GaC measurements on the lent GPU machine (issue 5, items 10 and 11). Run from the repository root:
#   bash benchmarks/gac_gpu.sh throughput-infer-compiled throughput-train
# (Its `synthroom` stage, which trained on six rooms of the evaluation split, is retired: gac.train refuses evaluation
# splits now; training runs through benchmarks/gac_synthroom_plan.sh on synthroom-train.)
# Stages write logs and JSON into $OUT (the device tool returns that folder). Each stage has its own time cap and
# a failing stage does not stop the next one. Needs the diffusers wheels in .whl/ (see gac/README.md).
set -u
OUT=${OUT:-/tmp/gac_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GAC_BENCH_HOME=/tmp/gac_home
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=$PWD:/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)" | tee -a "$OUT/gpu.txt"

for stage in "$@"; do
  t0=$(date +%s)
  case $stage in
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
