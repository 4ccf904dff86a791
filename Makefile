# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test install compile lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q cryptobot strategies
	touch $(STAMP)

install: $(STAMP)

# Byte-compile our own packages, as pip does for a normal (non-editable) install: an editable
# install leaves them as sources, and without .pyc files (or with PYTHONDONTWRITEBYTECODE set)
# every command compiles its ~70 modules again, 0.1-0.2 s of each `cryptobot` start-up.
compile: $(STAMP)
	$(BIN)/python -m compileall -q cryptobot strategies

demo: $(STAMP)
	$(BIN)/cryptobot demo

# One worker per core (up to 4): most tests wait on sockets, subprocesses and a browser.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4

lint: $(STAMP)
	$(BIN)/ruff check cryptobot strategies tests benchmarks

bench: $(STAMP) compile
	$(BIN)/python benchmarks/backtest_speed.py
	$(BIN)/python benchmarks/stream_latency.py
	$(BIN)/python benchmarks/peers/compare.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
