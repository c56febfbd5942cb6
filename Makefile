# Two entry points do all the set-up from nothing: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.installed

.PHONY: demo test install golden bench lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Dependencies are installed once (re-run when pyproject/constraints change); specc itself is
# reinstalled (non-editable, as a user gets it) on every run so tests see the real package.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -c constraints.txt ".[cpu,dev,serve]"
	touch $(STAMP)

install: $(STAMP)
	$(PIP) install -q --no-deps --force-reinstall --no-build-isolation . >/dev/null
	@rm -rf build/lib build/bdist* *.egg-info

demo: install
	$(BIN)/specc train specs/lenet5.yaml -o runs/lenet5 --overwrite
	$(BIN)/specc evaluate runs/lenet5
	$(BIN)/python docs/demo_serve.py runs/lenet5

test: install
	$(BIN)/pytest -n 2 tests

golden: install
	$(BIN)/python tests/regen_golden.py

# Benchmarks run in their own environment, which also holds what specc is compared against.
BENCH := .venv-bench
$(BENCH)/.installed: pyproject.toml constraints.txt bench/requirements.txt
	$(PY) -m venv $(BENCH)
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
