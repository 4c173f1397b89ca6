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
	$(VENV)/bin/digitrec data info

## test: set up and run the test suite
test: $(STAMP)
	$(PY) -m pytest

## lint: ruff
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
