# Developer entry points. Needs Python 3.11, Java 17+ and Maven (Apache Kafka's jars), Node.js 20.19+ with npm
# (the contract checkers in tools/), and PostgreSQL for `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
REQS   := requirements-dev.txt shared_events/pyproject.toml $(wildcard */requirements.txt)


.PHONY: kafka run test test-faults bench bench-quick bench-growth bench-ab bench-micro lint format venv node_modules up down asyncapi docs clean

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# The official AsyncAPI parser and Redocly's OpenAPI linter, which the tests run (tools/package-lock.json).
# Install scripts off: none of these packages needs one (one is a telemetry ping).
NPM_CI  := npm ci --ignore-scripts --no-audit --no-fund
TOOLS   := tools/node_modules/.package-lock.json
$(TOOLS): tools/package.json tools/package-lock.json
	cd tools && $(NPM_CI)
	touch $@

node_modules: $(TOOLS)

## make run: broker + 3 web + 3 workers with demo data (Ctrl-C stops all)
run: $(STAMP)
	$(PY) scripts/stack.py

## make test: every suite against PostgreSQL and an Apache Kafka node of its own (fresh data, free ports,
## SASL/SCRAM + ACLs); of the fault scenarios only the fast ones (slow ones are left to make test-faults)
test: $(STAMP) $(TOOLS)
	$(PY) kafka/broker.py --port 0 -- $(PY) scripts/run_tests.py -m "not slow" $(ARGS)

## make test-faults: every fault scenario, on a three-broker KRaft cluster of its own (report in
## var/test-results/faults-report.json)
test-faults: $(STAMP)
	$(PY) scripts/run_tests.py tests faults

## make bench: the whole system under open-loop load at rising rates, then the bare pipeline (bench/baseline.py)
## through the same ramp on the same broker, for the ratio (results in bench/results/; ARGS=--no-baseline skips it)
bench: $(STAMP)
	$(PY) bench/system_bench.py $(ARGS)

bench-quick: $(STAMP)
	$(PY) bench/system_bench.py --quick $(ARGS)

## make bench-growth: the same ramp, shorter, for 10, 100 and 1,000 hospitals and 5,000 and 100,000 units (~15 min)
bench-growth: $(STAMP)
	$(PY) bench/growth.py $(ARGS)

## make bench-ab: this checkout against a base commit (ARGS="--base HEAD~1 --rounds 2"), runs taken in turns (~20 min)
bench-ab: $(STAMP)
	$(PY) bench/ab.py $(ARGS)

## make bench-micro: allocation (decisions/second; one bank worker through Apache Kafka, goal >= 400/s)
## and notification micro-benchmarks, on PostgreSQL
bench-micro: $(STAMP)
	cd bloodbank_service && ../$(PY) bench/allocation_bench.py
	cd bloodbank_service && ../$(PY) bench/worker_bench.py $(ARGS)
	cd notification_service && ../$(PY) bench/notify_bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## make asyncapi: regenerate docs/asyncapi.json from the event classes
asyncapi: $(STAMP)
	$(PY) -m shared_events.asyncapi > docs/asyncapi.json
	$(PY) -m shared_events.topics > kafka/topics.json

## make docs: docs/asyncapi.json as HTML (the AsyncAPI generator's HTML template) in build/docs/asyncapi/
HTML_TOOLS := tools/asyncapi-html/node_modules/.package-lock.json
$(HTML_TOOLS): tools/asyncapi-html/package.json tools/asyncapi-html/package-lock.json
	cd tools/asyncapi-html && PUPPETEER_SKIP_DOWNLOAD=1 $(NPM_CI)
	touch $@

docs: $(HTML_TOOLS)
	tools/asyncapi-html/node_modules/.bin/asyncapi-generator docs/asyncapi.json \
	  ./tools/asyncapi-html/node_modules/@asyncapi/html-template -o build/docs/asyncapi --force-write
	@echo "open build/docs/asyncapi/index.html"

## make up / down: the compose deployment (Apache Kafka KRaft, PostgreSQL per service, KafkaDrop)
up: .env
	docker compose up --build

.env:
	$(PYTHON) scripts/make_env.py .env.example .env

down:
	docker compose down

## make kafka: only the broker, as make run starts it (127.0.0.1:9092, SASL/SCRAM + ACLs, data and admin.secret in var/kafka)
kafka: $(STAMP)
	$(PY) kafka/broker.py --port 9092 --data var/kafka

clean:
	rm -rf var kafka/jars build tools/node_modules tools/asyncapi-html/node_modules
