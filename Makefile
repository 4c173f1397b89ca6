# Two commands for a new machine: `make run` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-fast lint bench lock clean

## install (the default goal): .venv with every extra at the exact versions and sha256 hashes of
## constraints.txt, then digitrec itself, editable. The lock holds setuptools too, so the build
## needs no unpinned download (--no-build-isolation).
install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r constraints.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PIP) check
	touch $(STAMP)

## run: set up, fetch MNIST if missing, train and evaluate the default model
run: $(STAMP)
	$(VENV)/bin/digitrec data fetch
	$(VENV)/bin/digitrec train --model fast --out runs/fast --force

## test: set up and run the whole test suite
test: $(STAMP)
	$(PY) -m pytest

## test-fast: the suite without the tests marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

## lint: ruff, pyright (basic mode, src/) and the import-linter contracts of pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/pyright
	$(VENV)/bin/lint-imports

## bench: the speed and inference benchmarks (minutes; see README, Benchmarks)
bench: $(STAMP)
	mkdir -p bench/results
	$(VENV)/bin/digitrec bench speed --models fast:5,accurate:3 --tta accurate --json bench/results/speed.json
	$(VENV)/bin/python bench/photos.py --json bench/results/photos.json
	$(VENV)/bin/python bench/read.py --json bench/results/read.json
	$(VENV)/bin/digitrec train --model accurate --val-size 0 --out runs/accurate-all60k --force
	$(VENV)/bin/digitrec train --model fast --val-size 0 --out runs/fast-all60k --force
	$(VENV)/bin/digitrec bench infer fast=runs/fast-all60k accurate=runs/accurate-all60k --json bench/results/infer.json
	$(VENV)/bin/python bench/step_time.py --models fast,accurate --profile

## lock: regenerate constraints.txt after a change to the dependencies in pyproject.toml.
## Needs uv (`pip install uv`). torch is pinned to 2.13.0, the CPU build (2.13.0+cpu): its wheel
## is not on PyPI but in the folder that pip's find-links names on these machines, which uv reads
## only when told; PyPI's torch 2.13.0 is a multi-GB CUDA build. Python 3.11, as that wheel.
## Versions already in the lock are kept where they still fit; LOCKFLAGS=--upgrade takes the newest.
UV ?= uv
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
lock:
	printf 'torch==2.13.0+cpu\nsetuptools>=77\n' | $(UV) pip compile pyproject.toml - --all-extras \
	    --generate-hashes --python-version 3.11 --custom-compile-command 'make lock' \
	    $(foreach d,$(FIND_LINKS),--find-links $(d)) $(LOCKFLAGS) -o constraints.txt
	grep -q '^torch==2.13.0+cpu ' constraints.txt || { echo 'constraints.txt: torch is not the 2.13.0 CPU build' >&2; exit 1; }

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache

## weights: rebuild the shipped model, src/digitrec/weights/digits.safetensors (~53 min on one
## CPU thread; `python bench/make_weights.py --device cuda` on a GPU): the `best` recipe (issue
## 17) + a "not a digit" class (issue 14), 55k digits (5k held out to calibrate the reject
## threshold), seed 0, deterministic; then MNIST test once (see README, "The shipped model").
weights: $(STAMP)
	$(PY) bench/make_weights.py

## serve: the HTTP API and the draw-a-digit page on the shipped model, at http://127.0.0.1:8000/
serve: $(STAMP)
	$(VENV)/bin/digitrec serve

.PHONY: weights serve

## reader: rebuild the packaged sequence reader, src/digitrec/weights/reader.safetensors: a
## small CRNN (CTC) on 24k synthetic number strips (MNIST training digits, "train" fonts, photo
## conditions; 15 shards of 1,600), seed 0, 15 epochs. The strips take ~35 CPU-minutes
## (WORKERS=16 on a 16-core machine: ~2 min); training ~2 min on a GPU (DEVICE=cuda), far
## longer on a CPU. The shipped file is this target's run on an H100 (`DEVICE=cuda`, 113 s of
## training, 4 threads); its metadata holds the command and the dev accuracy per epoch.
WORKERS ?= 2
DEVICE ?= cpu
reader: $(STAMP)
	$(PY) bench/make_reader.py --shards 15 --per-shard 1600 --workers $(WORKERS) \
	    --epochs 15 --device $(DEVICE)

.PHONY: reader
