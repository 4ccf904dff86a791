# Two commands for a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cryptobot demo

# One worker per core (up to 4): most tests wait on sockets, subprocesses and a browser.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4

lint: $(STAMP)
	$(BIN)/ruff check cryptobot strategies tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/backtest_speed.py
	$(BIN)/python benchmarks/stream_latency.py
	$(BIN)/python benchmarks/peers/compare.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
