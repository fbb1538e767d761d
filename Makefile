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
DEMO_SCALE ?= 0.05
# The test split is sized apart: ~230 test images (~75 not nv), enough for the controls to mean something.
DEMO_TEST_SCALE ?= 0.15
# The demo's few minutes of CPU training learn only on the easy (colour-coded) twin; the showcase uses the
# calibrated default (site/study.md, "The synthetic twin").
DEMO_DIFFICULTY ?= easy
DEMO_SIZE ?= 128x96
DEMO_SEED ?= 0
SOURCE := $(DEMO_DIR)/source
DATA := $(DEMO_DIR)/data
RUNS := $(DEMO_DIR)/runs
RESULTS := $(DEMO_DIR)/results
SITE_OUT := build/site
DEMO_GRADCAM_N ?= 6
SHARED_TEMPLATES ?= ../shared/artefact-templates

.PHONY: demo test install lint chromium serve clean benchmarks showcase site

# ---- the published study: `make showcase` trains and evaluates (at most 2 hours on 2 CPU cores,
# resumable; DEVICE=cuda for a GPU) and writes results/showcase (committed, no checkpoints);
# `make site` builds the published site from results/showcase alone, in seconds.
SHOWCASE := results/showcase
SHOWCASE_WORK ?= showcase-work
DEVICE ?= auto

showcase: $(STAMP)
	$(CLI) showcase --out $(SHOWCASE) --work $(SHOWCASE_WORK) --device $(DEVICE)

site: $(STAMP)
	$(CLI) export --results $(SHOWCASE)/results --data $(SHOWCASE)/data --site-dir site
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "site: $(CURDIR)/$(SITE_OUT)/index.html"

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
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) chromium lint
	$(BIN)/pytest

# ---- the demo pipeline: every stage writes a file the next one reads, so a rerun reuses finished stages.
$(SOURCE)/SYNTHETIC.txt: | $(STAMP)
	@echo "==> [1/7] synthetic HAM10000 (scale $(DEMO_SCALE), test scale $(DEMO_TEST_SCALE), $(DEMO_SIZE))"
	$(CLI) synth-ham10000 --out $(SOURCE) --scale $(DEMO_SCALE) --test-scale $(DEMO_TEST_SCALE) --difficulty $(DEMO_DIFFICULTY) --size $(DEMO_SIZE) --seed $(DEMO_SEED)

$(DATA)/manifest.json: $(SOURCE)/SYNTHETIC.txt
	@echo "==> [2/7] all 22 variants to HDF5"
	$(CLI) generate --source $(SOURCE) --out $(DATA) --seed $(DEMO_SEED) --workers 2

$(RUNS)/.tiny-done: $(DATA)/manifest.json
	@echo "==> [3/7] tiny training profile: ResNet-34, Faster R-CNN, Mask R-CNN (1 fold, CPU)"
	$(CLI) sweep run --all --profile tiny --data $(DATA) --out $(RUNS)
	@touch $@

$(RESULTS)/results.json: $(RUNS)/.tiny-done
	@echo "==> [4/7] evaluate: metrics, CIs, McNemar, bias, flips"
	$(CLI) evaluate --runs $(RUNS) --out $(RESULTS)

# Grad-CAM of the detectors costs seconds per map on a CPU: the demo draws a small sample.
$(RESULTS)/gradcam/index.csv: $(RUNS)/.tiny-done
	@echo "==> [5/7] Grad-CAM overlays and artefact attention"
	$(CLI) gradcam --runs $(RUNS) --data $(DATA) --out $(RESULTS) --n $(DEMO_GRADCAM_N)

$(SITE_OUT)/index.html: $(RESULTS)/results.json $(RESULTS)/gradcam/index.csv
	@echo "==> [6/7] export the results site sources into site/"
	$(CLI) export --results $(RESULTS) --data $(DATA) --site-dir site
	@echo "==> [7/7] mkdocs build --strict"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

$(DEMO_DIR)/gallery.png: | $(STAMP)
	@echo "==> artefact gallery and one insertion per kind"
	$(CLI) templates gallery --templates builtin $(if $(wildcard $(SHARED_TEMPLATES)/meta.json),--compare $(SHARED_TEMPLATES)) --out $@
	$(CLI) templates examples --templates builtin --out $(DEMO_DIR)/examples

demo: $(DEMO_DIR)/gallery.png $(SITE_OUT)/index.html
	@echo
	@echo "Demo finished (synthetic data: the embedded demo, not HAM10000 results)."
	@echo "  variants:  $(DATA)   results: $(RESULTS)   gallery: $(DEMO_DIR)/gallery.png"
	@echo "  site:      $(CURDIR)/$(SITE_OUT)/index.html   (view it with: make serve)"

serve: $(STAMP)
	@echo "serving $(SITE_OUT) on http://127.0.0.1:8000"
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory $(SITE_OUT)

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/insertion.py
	$(BIN)/python benchmarks/augment.py
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/loader.py
	$(BIN)/python benchmarks/generate.py --scale 0.1
	$(BIN)/python benchmarks/gpu.py

clean:
	rm -rf $(DEMO_DIR) build
