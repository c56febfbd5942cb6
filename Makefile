# Two entry points do all the set-up from nothing: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.installed
# Where pip takes torch from. Empty (the default): pip's own configuration; from PyPI alone that
# is, on Linux, the CUDA build (about 2.7 GB with its nvidia packages). On a CPU-only machine:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
# (into a fresh .venv: `make clean` first) installs PyTorch's CPU build of the pinned version.
TORCH_INDEX ?=
TORCH_FIRST = $(if $(TORCH_INDEX),$(1) -m pip install -q -c constraints.txt --index-url $(TORCH_INDEX) torch)

.PHONY: demo test install js chromium golden bench lint docs clean fuzz

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Dependencies are installed once (re-run when pyproject/constraints change); specc itself is
# reinstalled (non-editable, as a user gets it) on every run so tests see the real package.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q --upgrade pip setuptools wheel
	$(call TORCH_FIRST,$(BIN)/python)
	$(PIP) install -q -c constraints.txt ".[cpu,dev,serve,tune,track,data]"
	touch $(STAMP)

install: $(STAMP)
	$(PIP) install -q --no-deps --force-reinstall --no-build-isolation . >/dev/null
	@rm -rf build/lib build/bdist* *.egg-info

demo: install
	$(BIN)/specc train specs/lenet5.yaml -o runs/lenet5 --overwrite
	$(BIN)/specc evaluate runs/lenet5
	$(BIN)/python docs/demo_serve.py runs/lenet5

# The JavaScript runtime's packages (onnxruntime-node, onnxruntime-web, playwright-core) from the
# committed lockfile. onnxruntime-node's install script would download a CUDA provider: skipped.
JS := runtime/js
$(JS)/node_modules/.installed: $(JS)/package.json $(JS)/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd $(JS) && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
	touch $@

js: $(JS)/node_modules/.installed

# Debian's Chromium for the browser tests (as root, as CI runs; nothing when it is installed).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# loadgroup: the tests of one xdist_group (the JavaScript and browser tests) share one worker,
# so the models they train are trained once.
test: install js chromium
	$(BIN)/pytest -n 2 --dist loadgroup --durations=25 tests

# The spec fuzzer of tests/test_fuzz.py at length: mutated specs, damaged YAML/TOML and hostile
# --set values through `specc check`; prints exit codes, time, memory and root causes.
FUZZ_CASES ?= 100000
FUZZ_JOBS ?= 2
fuzz: install
	@mkdir -p build
	$(BIN)/python tests/fuzz.py --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) --json build/fuzz.json

golden: install
	$(BIN)/python tests/regen_golden.py

# ruff over the project (generated files are checked by specc itself when it writes them).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Documentation generated from the code (a test fails when it is stale).
docs: install
	$(BIN)/python -m specc.compiler.docs docs/spec-language.md

# Benchmarks run in their own environment, which also holds what specc is compared against.
BENCH := .venv-bench
$(BENCH)/.installed: pyproject.toml constraints.txt bench/requirements.txt
	$(PY) -m venv $(BENCH)
	$(call TORCH_FIRST,$(BENCH)/bin/python)
	$(BENCH)/bin/python -m pip install -q -c constraints.txt ".[cpu]" -r bench/requirements.txt
	touch $(BENCH)/.installed

bench: $(BENCH)/.installed
	$(BENCH)/bin/python -m pip install -q --no-deps --force-reinstall --no-build-isolation . >/dev/null
	@rm -rf build/lib build/bdist* *.egg-info
	$(BENCH)/bin/python bench/run.py
	$(BENCH)/bin/python bench/train_throughput.py --json bench/train_throughput.json
	$(BENCH)/bin/python bench/lm.py --json bench/lm.json
	$(BENCH)/bin/python bench/attention.py --json bench/attention.json
	$(BENCH)/bin/python bench/rnn_native.py --json bench/rnn_native.json

clean:
	rm -rf $(VENV) $(BENCH) build dist runs *.egg-info
