# Two commands on a fresh clone (see README):
#   make          set up the pinned environment and build the default model
#   make test     run the default (fast) test suite
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
MODEL   ?= tfc_w1a1
BOARD   ?= pynq-z2
# tests run on both cores by default; CI machines have 2
JOBS    ?= 2

.PHONY: all setup build test test-slow test-all lint lock clean

all: build

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip==25.1
	$(VENV)/bin/pip install --quiet --progress-bar off -r requirements.lock
	$(VENV)/bin/pip check
	touch $@

setup: $(VENV)/.installed

build: setup
	$(PY) build.py --model $(MODEL) --board $(BOARD)

test: setup
	$(PY) -m pytest -n $(JOBS) tests/

test-slow: setup
	$(PY) -m pytest -n $(JOBS) -m slow tests/

test-all: setup
	$(PY) -m pytest -n $(JOBS) -m "slow or not slow" tests/

lint: setup
	$(PY) -m ruff check .

lock: setup
	$(VENV)/bin/pip install --quiet -r requirements.txt
	(echo "# Full pinned environment (pip freeze of requirements.txt); \`make setup\` installs this."; \
	 echo "# Regenerate: make lock"; \
	 $(VENV)/bin/pip freeze | sed 's/^torch==\(.*\)+cpu/torch==\1/'; echo "setuptools==80.0.0") > requirements.lock

clean:
	rm -rf build
