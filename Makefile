# The newcomer's two commands are `make run` and `make test`; the rest are the coach's.
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup build run serve test mutation new-post leads export outbox outbox-retry messages consent-stats clean

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(BIN)/.installed

## build: check and build the site into site/ and, at the same time, the checklist PDFs into instance/pdfs/
build: setup
	$(BIN)/python -m leadform.pdf instance/pdfs & pdfs=$$!; \
	$(BIN)/mkdocs build --strict; site=$$?; wait $$pdfs && exit $$site

## run: build, then serve the site and the lead capture on http://127.0.0.1:$(PORT)
run: build
	LEADFORM_DEV_SECRET=1 $(BIN)/python -m leadform.serve --port $(PORT)

## serve: live preview while writing (drafts shown), http://127.0.0.1:$(PORT)
# --dirty rebuilds only the saved page and the blog lists that show it (site_config/speedups.py): about
# 2 s instead of 15 s with 500 posts (bench/live_reload.py). mkdocs warns that a dirty build may leave
# other pages stale, which strict mode would turn into an abort, hence --no-strict for the preview
# only; `make build` stays strict. Restart `make serve` to refresh the home page's latest posts.
serve: setup
	$(BIN)/mkdocs serve --dirty --no-strict --dev-addr 127.0.0.1:$(PORT)

## test: lint and run every test
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

## mutation: mutation testing of the core modules (slow; not part of CI)
# Which modules and which tests: [tool.mutmut] in pyproject.toml. Always from scratch (mutmut would keep
# the verdicts of a previous run although the tests changed), niced, at most JOBS tests at once.
# One module: make mutation MUTANTS='leadform.outbox.*'. Details: .venv/bin/mutmut results | show NAME.
JOBS    ?= 2
MUTANTS ?=
mutation: setup
	rm -rf mutants
	nice -n 10 $(BIN)/mutmut run --max-children $(JOBS) $(MUTANTS)
	@$(BIN)/mutmut results --all true | awk -F'[.:] *' '{ sub(/^ +/, ""); m = $$1 "." $$2; n[m]++; s[m, $$NF]++ } \
	  END { printf "%-22s %7s %8s %7s %6s %6s\n", "module", "killed", "survived", "no test", "total", "score"; \
	    for (m in n) { k = s[m, "killed"] + s[m, "timeout"]; t = k + s[m, "survived"]; \
	      printf "%-22s %7d %8d %7d %6d %5.1f%%\n", m, k, s[m, "survived"], s[m, "no tests"], n[m], t ? 100 * k / t : 0 } }'

## new-post: make new-post TITLE="Mijn titel"
new-post: setup
	$(BIN)/python -m site_config.new_post "$(TITLE)"

## leads / export / messages / outbox / outbox-retry: the coach's view of what came in
FLASK := LEADFORM_DEV_SECRET=1 $(BIN)/flask --app leadform
leads: setup
	$(FLASK) leads list
export: setup
	$(FLASK) leads export --format csv
messages: setup
	$(FLASK) messages list
outbox: setup
	$(FLASK) outbox list
outbox-retry: setup
	$(FLASK) outbox retry
consent-stats: setup
	$(FLASK) consent stats

clean:
	rm -rf site .pytest_cache test-artifacts
