# Two commands for a new machine: `make run` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## run: set up, fetch MNIST if missing, train and evaluate the default model
run: $(STAMP)
	$(VENV)/bin/digitrec data fetch
	$(VENV)/bin/digitrec train --model fast --out runs/fast

## test: set up and run the test suite
test: $(STAMP)
	$(PY) -m pytest

## bench: the speed and inference benchmarks (minutes; see README, Benchmarks)
bench: $(STAMP)
	mkdir -p bench/results
	$(VENV)/bin/digitrec bench speed --models fast:5,accurate:3 --tta accurate --json bench/results/speed.json
	$(VENV)/bin/python bench/photos.py --json bench/results/photos.json  # trains runs/accurate-all60k
	$(VENV)/bin/digitrec train --model fast --val-size 0 --out runs/fast-all60k
	$(VENV)/bin/digitrec bench infer fast=runs/fast-all60k accurate=runs/accurate-all60k --json bench/results/infer.json
	$(VENV)/bin/python bench/step_time.py --models fast,accurate --profile

## lint: ruff
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
