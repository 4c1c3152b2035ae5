# The project's commands. Each sets up what it needs (virtualenv, install) first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-project

.PHONY: demo test test-fast test-services test-services-stop bench serve install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	# MovieLens-100k ships in this wheel; only its data files are read (its own
	# dependencies, torch among them, are not wanted), hence --no-deps.
	$(BIN)/pip install --quiet --no-deps "recbole==1.2.1"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/personable --project $(DEMO_DIR) demo

# Everything, against real servers: scripts/test-services.sh installs Debian's
# redis-server and postgresql if they are missing and starts private ones on
# 127.0.0.1 (state in .test-services/); they keep running for the next run.
# Outside CI a machine that cannot have them (not root, no apt) still runs the
# rest: their tests skip with the reason. In CI (CI=true) that is a failure.
test: $(STAMP)
	@bash scripts/test-services.sh start || case "$${CI:-}" in \
	  1|true|yes) echo "test servers are required in CI"; exit 1;; \
	  *) echo "test servers unavailable: the tests that need them will skip";; esac
	$(BIN)/python -m pytest -q

# The inner loop: no servers, no slow end-to-end tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not services"

test-services:
	bash scripts/test-services.sh start

test-services-stop:
	bash scripts/test-services.sh stop

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

serve: $(STAMP)
	@test -f $(DEMO_DIR)/personable.yaml || $(BIN)/personable --project $(DEMO_DIR) init
	$(BIN)/personable --project $(DEMO_DIR) serve

clean: test-services-stop
	rm -rf $(VENV) $(DEMO_DIR) bench-data .pytest_cache .test-services
