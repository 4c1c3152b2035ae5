# The project's commands. Each sets up what it needs (virtualenv, install) first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-project

.PHONY: demo test bench serve install clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

serve: $(STAMP)
	@test -f $(DEMO_DIR)/personable.yaml || $(BIN)/personable --project $(DEMO_DIR) init
	$(BIN)/personable --project $(DEMO_DIR) serve

clean:
	rm -rf $(VENV) $(DEMO_DIR) bench-data .pytest_cache
