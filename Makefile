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
	$(PIP) install -q -c constraints.txt ".[cpu,dev]"
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

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist runs *.egg-info
