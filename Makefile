# The two set-up commands are `make sandbox` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: sandbox test lint contracts browser screenshots unit integration e2e bench drill clean

# The browser tests drive Debian's Chromium (never a downloaded one) and need CJK fonts, or
# their screenshots show Chinese as boxes; both are installed from Debian when missing.
CHROMIUM ?= /usr/bin/chromium
CJK_FONTS ?= fonts-noto-cjk
# $(call apt_install,PACKAGE): apt-get as root (updating the lists once if need be), else
# sudo -n; a failure is said, and the browser tests then say what is missing.
apt_install = { echo "make: installing Debian's $(1) for the browser tests"; \
	if [ "$$(id -u)" = 0 ]; then apt-get install -y -q $(1) >/dev/null \
		|| { apt-get update -q >/dev/null && apt-get install -y -q $(1) >/dev/null; }; \
	else sudo -n apt-get install -y -q $(1) >/dev/null; fi \
	|| echo "make: could not install $(1): the browser tests will say so"; }

# The suite runs on every core (pytest-xdist; ADR 0005): one worker per CPU, idle workers
# steal queued tests from busy ones. `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Set up and run the gateway in sandbox mode on an embedded SQLite file.
sandbox: $(STAMP)
	$(BIN)/gba-gateway sandbox

## Set up and run lint, import contracts and the whole suite.
test: $(STAMP) lint contracts browser
	$(PYTEST)

browser:
	@test -x $(CHROMIUM) || $(call apt_install,chromium)
	@{ command -v fc-list >/dev/null && fc-list :lang=zh family | grep -q .; } \
		|| dpkg -s $(CJK_FONTS) >/dev/null 2>&1 || $(call apt_install,$(CJK_FONTS))

## Regenerate the portal's screenshots in docs/portal/ (docs/portal.md) from the browser test.
SHOTS ?= .sandbox/screenshots
screenshots: $(STAMP) browser
	@command -v pngquant >/dev/null || $(call apt_install,pngquant)
	rm -rf $(SHOTS)
	GBA_BROWSER_ARTIFACTS=$(CURDIR)/$(SHOTS) $(BIN)/python -m pytest -n 0 -q \
		tests/browser/test_portal_languages.py
	$(BIN)/python -m tests.browser.screenshots $(SHOTS) docs/portal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(PYTEST) tests/unit

integration: $(STAMP)
	$(PYTEST) tests/integration

e2e: $(STAMP)
	$(PYTEST) tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench

## Break the gateway on purpose (crash, partner outage, PostgreSQL restart); about 7 min.
drill: $(STAMP)
	$(BIN)/python -m bench.drills all

clean:
	rm -rf $(VENV) .sandbox .pytest_cache .ruff_cache build *.egg-info
