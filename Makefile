# Two entry points from a fresh clone: `make demo` and `make test`.
# Both build .venv and install what is missing by themselves.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON  ?= python3

.PHONY: install demo test lint unit tools

# Debian tools the tests drive for real: docker-compose validates docker-compose.yml;
# headless Chromium (with CJK fonts) runs the dashboard browser test through Playwright;
# kcat is the second, independent Kafka client of the broker tests.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

# The machine sets PYTHONDONTWRITEBYTECODE, so compile once here or every import pays for it.
install: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 govex catalog contracts connectors quality lineage records \
	  exchange benchmarks dags >/dev/null

demo: install
	$(BIN)/govex demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

tools:
	@command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends docker-compose; }
	@{ [ -x /usr/bin/chromium ] && fc-list :lang=zh | grep -q . ; } || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver \
	    fonts-noto-cjk; }
	@command -v kcat >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends kcat; }

# The suite in two phases: most tests in $(TEST_WORKERS) worker processes (they wait on databases,
# brokers and subprocesses about half the time), then the `solo` tests alone, whose process
# clusters, heartbeats and leases must not share the machine. Both phases run; either failing
# fails the target.
TEST_WORKERS ?= 2

test: lint tools
	@status=0; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not solo" || status=$$?; \
	$(BIN)/pytest -m solo || status=$$?; \
	exit $$status

unit: install
	$(BIN)/pytest -m "not integration"
