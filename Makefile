# Developer entry points. Needs only Python 3.11 (and PostgreSQL for `make test`).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
REQS   := requirements-dev.txt shared_events/pyproject.toml $(wildcard */requirements.txt)

.PHONY: run test test-faults bench lint format venv up down asyncapi clean

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## make run: broker + 3 web + 3 workers with demo data (Ctrl-C stops all)
run: $(STAMP)
	$(PY) scripts/stack.py

## make test: every suite against PostgreSQL and an embedded broker of its own
test: $(STAMP)
	$(PY) -m shared_events.embedded_broker --port 0 -- $(PY) scripts/run_tests.py $(ARGS)

## make test-faults: only the fault-injection tests (tests/faults/, also part of make test)
test-faults: $(STAMP)
	$(PY) scripts/run_tests.py tests faults

## make bench: allocation (decisions/second) and notification benchmarks, on PostgreSQL
bench: $(STAMP)
	cd bloodbank_service && ../$(PY) bench/allocation_bench.py
	cd notification_service && ../$(PY) bench/notify_bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make asyncapi: regenerate docs/asyncapi.json from the event classes
asyncapi: $(STAMP)
	$(PY) -m shared_events.json_schema > docs/asyncapi.json
	$(PY) -m shared_events.topics > kafka/topics.json

## make up / down: the compose deployment (Apache Kafka KRaft, PostgreSQL per service, KafkaDrop)
up: .env
	docker compose up --build

.env:
	$(PYTHON) scripts/make_env.py .env.example .env

down:
	docker compose down

clean:
	rm -rf var
