# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
BENCH_BACKEND ?= sqlite
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test deps assets browser migrate seed worker clean bench

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .  # the `crm` console command
	touch $@

deps: $(VENV)/.deps

node_modules/.deps: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

static/vendor/.assets: node_modules/.deps static/scss/portal.scss
	rm -rf static/vendor && mkdir -p static/vendor
	cp -r node_modules/govuk-frontend/dist/govuk static/vendor/govuk
	cp node_modules/socket.io-client/dist/socket.io.min.js node_modules/socket.io-client/dist/socket.io.min.js.map static/vendor/
	cp node_modules/axe-core/axe.min.js static/vendor/
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
	# Resident pages: GOV.UK Frontend compiled with the council's font stack and colours.
	node_modules/.bin/sass --load-path=node_modules --style=compressed --no-source-map --quiet-deps \
	  --silence-deprecation=import --silence-deprecation=global-builtin --silence-deprecation=color-functions \
	  static/scss/portal.scss static/vendor/portal.css
	touch $@

assets: static/vendor/.assets

# Browser tests drive Debian's Chromium; install it when missing (needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests" >&2; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2; }

# A random key made once per installation, so nobody can sign a session for the demo either.
instance/secret_key:
	mkdir -p instance
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(48))" > $@

migrate: deps instance/secret_key
	mkdir -p instance
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) crm seed-demo --if-empty

# The web server and the job worker (outbound mail, SLA sweeps) together; Ctrl-C stops both.
run: deps assets seed
	@$(BIN)/python -m crm.worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python wsgi.py

worker: deps
	$(BIN)/python -m crm.worker

test: deps assets browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# BENCH_BACKEND=both (or postgresql) adds PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench.
bench: deps
	mkdir -p bench/data
	$(BIN)/python bench/customers.py --backend $(BENCH_BACKEND)

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache *.egg-info
