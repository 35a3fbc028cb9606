# The newcomer's two commands are `make run` and `make test`; the rest are the coach's.
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup build rollback run serve test mutation new-post deploy leads export outbox outbox-retry messages consent-stats scorecards clean

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(BIN)/.installed

## build: check and build the site into a new releases/<id> (with .gz copies) and the checklist PDFs;
## only when every check passed does `site` point to it (one rename). The last 5 releases stay.
build: setup
	$(BIN)/python -m site_config.publish build

## rollback: put the release before the current one back online
rollback: setup
	$(BIN)/python -m site_config.publish rollback

## run: build, then serve the site and the lead capture on http://127.0.0.1:$(PORT) (gunicorn, SQLite, mail in files)
run: build
	@echo "Site en formulieren: http://127.0.0.1:$(PORT)/  (mail: instance/mail/*.eml)"
	LEADFORM_DEV_SECRET=1 LEADFORM_PUBLIC_URL=http://127.0.0.1:$(PORT)/ GUNICORN_BIND=127.0.0.1:$(PORT) \
	GUNICORN_WORKERS=1 GUNICORN_THREADS=4 $(BIN)/gunicorn -c deploy/gunicorn.conf.py 'leadform.wsgi:with_site()'

## serve: live preview while writing (drafts shown), http://127.0.0.1:$(PORT)
# A full, strict rebuild after each save, so every page (the blog lists, the home page's latest posts)
# shows the change; with 500 posts that takes about half a minute (bench/live_reload.py). Not --dirty:
# it kept the old excerpt on the blog index and showed the saved post alone on the other blog lists.
# Libraries' DeprecationWarnings (with their tracebacks) are for us, not the coach: the terminal shows
# MkDocs' lines and our Dutch ones; a build error shows in the browser too (site_config/hooks.py on_serve).
serve: setup
	PYTHONWARNINGS=ignore::DeprecationWarning $(BIN)/mkdocs serve --dev-addr 127.0.0.1:$(PORT)

tests/node_modules/.installed: tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund --silent
	touch $@

## test: lint and run every test (axe-core for the accessibility tests comes from tests/package.json)
test: setup tests/node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/pytest

## mutation: mutation testing of the core modules (slow; not part of CI)
# Which modules and which tests: [tool.mutmut] in pyproject.toml. Always from scratch (mutmut would keep
# the verdicts of a previous run although the tests changed), niced, at most JOBS tests at once.
# One module: make mutation MUTANTS='leadform.outbox.*'. Details: .venv/bin/mutmut results | show NAME.
# Score = killed (timeouts included) / (killed + survived); mutants left unchecked are not in it.
JOBS    ?= 2
MUTANTS ?=
mutation: setup
	rm -rf mutants
	nice -n 10 $(BIN)/mutmut run --max-children $(JOBS) $(MUTANTS)
	@$(BIN)/mutmut results --all true | awk -F'[.:] *' '{ sub(/^ +/, ""); m = $$1 "." $$2; n[m]++; s[m, $$NF]++ } \
	  END { printf "%-22s %7s %8s %7s %9s %6s %6s\n", "module", "killed", "survived", "no test", "unchecked", "total", "score"; \
	    for (m in n) { k = s[m, "killed"] + s[m, "timeout"]; t = k + s[m, "survived"]; \
	      printf "%-22s %7d %8d %7d %9d %6d %5.1f%%\n", m, k, s[m, "survived"], s[m, "no tests"], s[m, "not checked"], n[m], t ? 100 * k / t : 0 } }'

## new-post: make new-post TITLE="Mijn titel"
new-post: setup
	$(BIN)/python -m site_config.new_post "$(TITLE)"

## deploy: build and publish to the server (DEPLOY_HOST=user@server; deploy/README.md, "Deploy on push")
deploy: setup
	deploy/deploy.sh

## leads / export / messages / outbox / outbox-retry: the coach's view of what came in (Dutch, Belgian time)
# `@`: make prints no command line, so `make export > aanvragen.csv` holds the CSV and nothing else; a
# first run's setup (pip) writes to stderr for the same reason.
# On the server they read the production database, through the settings file the service reads
# (LEADFORM_ENV_FILE, default /etc/coach/leadform.env): used whenever its folder exists or it is named,
# so a file the user may not read stops the command rather than showing an empty development database.
# Elsewhere: the development SQLite file in instance/ with a development secret.
LEADFORM_ENV_FILE ?= /etc/coach/leadform.env
ifneq ($(or $(filter-out file,$(origin LEADFORM_ENV_FILE)),$(wildcard $(dir $(LEADFORM_ENV_FILE)))),)
FLASK := set -a && . $(abspath $(LEADFORM_ENV_FILE)) && set +a && $(BIN)/flask --app leadform
else
FLASK := LEADFORM_DEV_SECRET=1 $(BIN)/flask --app leadform
endif
leads: setup
	@$(FLASK) leads list
export:
	@$(MAKE) -s setup >&2
	@$(FLASK) leads export --format csv
messages: setup
	@$(FLASK) messages list
outbox: setup
	@$(FLASK) outbox list
outbox-retry: setup
	@$(FLASK) outbox retry
consent-stats: setup
	@$(FLASK) consent stats
scorecards: setup
	@$(FLASK) scorecards stats

clean:
	rm -rf site releases .pytest_cache test-artifacts
