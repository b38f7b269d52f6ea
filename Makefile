# Two commands do all set-up on a fresh machine (Debian, Python 3.11, no conda):
#   make reproduce   create .venv, install, run every notebook (quick profile, embedded data)
#   make test        create .venv, install, run the test suite
# Options: make reproduce PROFILE=cpu DATA_DIR=/path/to/300w FORCE=1 (YES=1: full profile without a GPU)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
DATA_DIR ?=
STAMP := $(VENV)/.installed

.PHONY: install reproduce test test-fast test-browser chromium clean-runs release-weights ship-weights

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[notebooks,dev,peers]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	$(VENV)/bin/fkd reproduce --profile $(PROFILE) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(FORCE),--force) $(if $(YES),--yes)

# The browser test drives Debian's Chromium (Playwright's own download is not used); install it
# when absent and apt-get can (root); otherwise the test skips saying what is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || \
	{ command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	echo "chromium not installed (needs apt-get as root): the browser test will skip"

test: $(STAMP) chromium
	$(PY) -m pytest

test-browser: $(STAMP) chromium
	$(PY) -m pytest -m browser

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The weights fkd predict will ship (profile release: the cpu models trained further, hours on
# 2 cores): every epoch is a resume point, so rerun after an interruption to continue.
release-weights: $(STAMP)
	$(VENV)/bin/fkd train --profile release --data-dir $(or $(DATA_DIR),../shared/data/300w) \
	  --approach cascade --out weights/release

# the shipped folder: the shipped models with the release run's stored models of RELEASED put
# in, plus int8 models; written to weights/shipped (compare it on the tenth, then copy it into
# fkd_utils/weights/real/)
RELEASED ?= cascade_stage1 cascade_stage2 cascade_stage3 cascade_region_right_eye \
  cascade_region_left_eye cascade_region_nose cascade_region_mouth cascade_region_jaw
RELEASE_RUN ?= models/release/300w-6419e0cf6e
ship-weights: $(STAMP)
	$(VENV)/bin/python -m fkd_utils.release --data-dir $(or $(DATA_DIR),../shared/data/300w) \
	  --out weights/shipped $(foreach m,$(RELEASED),--replace $(m)=$(RELEASE_RUN)/$(m).keras)

clean-runs:
	rm -rf runs results figures/*.png
