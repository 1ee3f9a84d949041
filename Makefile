# The targets CI and people use alike. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ORT_DIR   := .tools/onnxruntime
ORT_LIB   := $(ORT_DIR)/libonnxruntime.so.1.31.1
ML_VENV   := .venv-ml
LOAD_VENV := .venv-loadtest
export ORT_DYLIB_PATH := $(CURDIR)/$(ORT_LIB)
export REDIS_URL ?= redis://127.0.0.1:6379

.PHONY: help run test lint fmt build bench loadtest train score simulate model-fixture ort redis clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: redis ort ## Start the risk sidecar on 127.0.0.1:8081 against local Redis, with the model
	cargo build --release --locked -p risk-sidecar
	@echo "Risk sidecar on http://127.0.0.1:8081 (POST /v1/decisions, GET /readyz, /metrics). Ctrl-C stops it."
	RISK__REDIS__URL=$(REDIS_URL) RISK__LOG__FORMAT=pretty ./target/release/risk-sidecar

test: redis ort ## Every test: format, clippy, unit, property and integration tests (real Redis)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo test --workspace --locked --no-fail-fast; status=$$?; scripts/purge-keys.sh 'test-*' 'bench-*'; exit $$status

lint: ## Format check and clippy
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	cargo fmt --all

build: ort ## Release build
	cargo build --release --locked --workspace

bench: redis ort loadtest-tools ## Criterion micro-benchmarks and the HTTP load benchmark (figures for the README)
	scripts/bench.sh

loadtest: redis ort loadtest-tools ## k6 capacity test against a sidecar started for it (loadtest/decisions.js)
	scripts/loadtest.sh

HISTORY ?=
OUT ?= models/lgbm
SEED ?= 42
train: ort ## Train the model: simulated history (or HISTORY=file.jsonl), replay, LightGBM, ONNX, card, ml/REPORT.md -> OUT
	scripts/ensure-python-venv.sh $(ML_VENV) ml/requirements.txt
	cargo build --release --locked -p simulator -p risk-sidecar
	@mkdir -p build
	@if [ -z "$(HISTORY)" ]; then ./target/release/simulator --seed $(SEED) --out build/history.jsonl; fi
	./target/release/risk-replay --history $(if $(HISTORY),$(HISTORY),build/history.jsonl) --out build/features.csv
	$(ML_VENV)/bin/python ml/train.py --table build/features.csv --history $(if $(HISTORY),$(HISTORY),build/history.jsonl) \
	  --out $(OUT) --report $(if $(HISTORY),$(OUT)/REPORT.md,ml/REPORT.md)

MODEL ?= models/lgbm
score: ort ## Score HISTORY=file.jsonl offline with MODEL=dir (feature, model and policy code of the sidecar) -> build/scores.jsonl
	@test -n "$(HISTORY)" || { echo "make score HISTORY=<file.jsonl> [MODEL=<dir>]"; exit 2; }
	cargo build --release --locked -p risk-sidecar
	@mkdir -p build
	./target/release/risk-score --history $(HISTORY) --model $(MODEL) --out build/scores.jsonl

simulate: ## Write a simulated history: build/history.jsonl (SEED=42)
	cargo build --release --locked -p simulator
	@mkdir -p build
	./target/release/simulator --seed $(SEED) --out build/history.jsonl

model-fixture: ## Regenerate the fixture model in models/fixture (LightGBM on synthetic rows)
	scripts/ensure-python-venv.sh $(ML_VENV) ml/requirements.txt
	$(ML_VENV)/bin/python ml/make_fixture_model.py --out models/fixture

ort: $(ORT_LIB) ## Fetch the ONNX Runtime library from its PyPI wheel (pinned by hash)

$(ORT_LIB): scripts/fetch-onnxruntime.sh scripts/ort-requirements.txt
	scripts/fetch-onnxruntime.sh $(ORT_DIR)

redis: ## Make sure Redis answers at REDIS_URL (installs and starts it locally if needed)
	scripts/ensure-redis.sh

.PHONY: loadtest-tools
loadtest-tools:
	@command -v wrk >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	scripts/ensure-python-venv.sh $(LOAD_VENV) loadtest/requirements.txt

clean: ## Remove build output and downloaded tools
	cargo clean
	rm -rf .tools $(ML_VENV) $(LOAD_VENV) bench-results build
