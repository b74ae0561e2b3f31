# make demo: set everything up and run the main job on built-in defaults.
# make test: set everything up and run the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-release

.PHONY: setup test test-fast lint format typecheck demo clean test-deps

setup: $(STAMP)

# torch goes first and pinned: a bare "torch" requirement would pull a CUDA build of several GB,
# while torch==2.13.0 is the CPU wheel. Everything else is installed against tested versions.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[all,dev]'
	touch $@

# What the remote-device tests run against: Debian's OpenSSH server (tests start their own on
# 127.0.0.1) and lean "device" Pythons like a Raspberry Pi's: numpy<2 with tflite-runtime and
# onnxruntime, and one with numpy alone (a device without a runtime). Debian's Chromium, for the test
# that renders report.html headless (playwright from the dev extra drives it; it downloads no browser). And two emulated boards
# (shufflekit board build: qemu user mode), an arm64 one and an x86-64 one without AVX-512/VNNI;
# a board that is up to date is kept, so a rerun takes a second.
DEVICE_VENV      ?= .venv-device
BARE_DEVICE_VENV ?= .venv-device-bare
DEVICE_REQS      := scripts/device-requirements.txt
BOARD_ARM64      ?= .board-arm64
BOARD_AVX2       ?= .board-avx2

test-deps: setup $(DEVICE_VENV)/.installed $(BARE_DEVICE_VENV)/.installed
	@scripts/install-sshd.sh
	@scripts/install-chromium.sh
	$(VENV)/bin/shufflekit board build --force --kind arm64 $(BOARD_ARM64)
	$(VENV)/bin/shufflekit board build --force --kind x86-avx2 $(BOARD_AVX2)

$(DEVICE_VENV)/.installed: $(DEVICE_REQS)
	rm -rf $(DEVICE_VENV) && $(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(DEVICE_REQS)
	touch $@

$(BARE_DEVICE_VENV)/.installed: $(DEVICE_REQS)
	rm -rf $(BARE_DEVICE_VENV) && $(PYTHON) -m venv $(BARE_DEVICE_VENV)
	$(BARE_DEVICE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$$(grep '^numpy' $(DEVICE_REQS))"
	touch $@

# The suite runs on TEST_WORKERS pytest-xdist workers (one per core on the 2-core CI machine; 0 runs it in
# one process). --dist worksteal: each worker starts on its half of the suite in file order (a module's
# tests and module fixtures stay together) and takes tests from the other's end when it runs dry.
# The converting/training session fixtures are built once for both workers (tests/build_once.py).
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

test: setup test-deps
	$(PY) -m pytest $(XDIST)

# The quick loop while editing: no onnx2tf conversions or training runs, no sshd or boards (about a minute;
# tests that use such fixtures are marked slow or ssh in tests/conftest.py).
test-fast: setup
	$(PY) -m pytest $(XDIST) -m "not slow and not ssh"

# Lint and formatting (ruff) and types (mypy), as CI runs them; `make format` rewrites in place.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: setup
	$(VENV)/bin/mypy

# The main job: train the demo model briefly, release it in every format and precision, profile it here.
demo: setup
	$(VENV)/bin/shufflekit release --demo --out $(DEMO_OUT)

clean:
	rm -rf $(VENV) $(DEVICE_VENV) $(BARE_DEVICE_VENV) $(BOARD_ARM64) $(BOARD_AVX2) $(DEMO_OUT) .pytest_cache
