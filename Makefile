# ham-artefacts: two commands set everything up on a fresh machine.
#   make demo   venv + install, then the whole pipeline on the embedded synthetic data
#   make test   venv + install if needed, then ruff and the test suite
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLI := $(BIN)/ham-artefacts

# The embedded default: a small synthetic HAM10000 in the Dataverse layout (data_manifest.json is its manifest).
DEMO_DIR ?= demo
DEMO_SCALE ?= 0.03
DEMO_SIZE ?= 128x96
DEMO_SEED ?= 0
SOURCE := $(DEMO_DIR)/source
DATA := $(DEMO_DIR)/data
RUNS := $(DEMO_DIR)/runs
RESULTS := $(DEMO_DIR)/results
SITE_OUT := build/site

.PHONY: demo test install lint chromium serve clean gallery benchmarks

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing ham-artefacts (torch 2.14.1 + torchvision 0.29.1)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	@touch $@

# Debian's chromium for the browser tests (Playwright's own browser download cannot work offline).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "==> installing Debian chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) chromium lint
	$(BIN)/pytest

# ---- the demo pipeline: every stage writes a file the next one reads, so a rerun reuses finished stages.
$(SOURCE)/SYNTHETIC.txt: | $(STAMP)
	@echo "==> [1/7] synthetic HAM10000 (scale $(DEMO_SCALE), $(DEMO_SIZE))"
	$(CLI) synth-ham10000 --out $(SOURCE) --scale $(DEMO_SCALE) --size $(DEMO_SIZE) --seed $(DEMO_SEED)

$(DATA)/manifest.json: $(SOURCE)/SYNTHETIC.txt
	@echo "==> [2/7] all 22 variants to HDF5"
	$(CLI) generate --source $(SOURCE) --out $(DATA) --seed $(DEMO_SEED) --workers 2

gallery: $(STAMP)
	@echo "==> artefact gallery and one insertion per kind"
	$(CLI) templates gallery --out $(DEMO_DIR)/gallery.png

demo: $(DATA)/manifest.json gallery
	@echo "==> demo finished: variants in $(DATA)"

serve: $(STAMP)
	@echo "serving $(SITE_OUT) on http://127.0.0.1:8000"
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory $(SITE_OUT)

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/insertion.py

clean:
	rm -rf $(DEMO_DIR) build
