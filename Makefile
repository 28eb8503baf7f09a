# Hotline400 — short targets for everyday work. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | md5sum | cut -c1-8)
HOST ?= 127.0.0.1:8000
# Parallel test workers (the CI machine has 2 cores).
TEST_WORKERS ?= 2

.PHONY: help install run test test-fast e2e worker beat lint format messages bench migrations-check clean

help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the pinned requirements

run: install ## Run the portal with demo data on the embedded default (SQLite, eager Celery)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Hotline400 is at http://$(HOST)/  (back office: http://$(HOST)/admin/)"
	$(PY) manage.py runserver $(HOST)

test: install ## Run the whole suite against PostgreSQL and Redis on localhost
	@$(PY) scripts/check_stack.py
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

e2e: install ## Only the end-to-end journeys (Debian's chromium; pictures in test-artifacts/screenshots/)
	@$(PY) scripts/check_stack.py
	$(PY) -m pytest tests/e2e -n $(TEST_WORKERS) $(PYTEST_ARGS)

worker: install ## Run a Celery worker (set DJANGO_SETTINGS_MODULE=config.settings.production)
	$(VENV)/bin/celery -A config worker --loglevel=INFO --concurrency=2

beat: install ## Run Celery beat — exactly one per deployment
	$(VENV)/bin/celery -A config beat --loglevel=INFO

lint: install ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: install ## Extract translations and compile them (needs gettext; .mo files are committed)
	for c in core accounts plans billing; do $(PY) scripts/i18n.py update $$c || exit 1; done

migrations-check: install ## Fail when models changed without a migration
	$(PY) manage.py makemigrations --check --dry-run

bench: install ## Run the benchmarks (PostgreSQL); prints figures and ratios
	$(PY) -m bench

clean:
	rm -rf var/test .pytest_cache
