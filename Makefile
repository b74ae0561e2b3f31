# make demo: set everything up and run the main job on built-in defaults.
# make test: set everything up and run the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-release

.PHONY: setup test demo clean

setup: $(STAMP)

# torch goes first and pinned: a bare "torch" requirement would pull a CUDA build of several GB,
# while torch==2.13.0 is the CPU wheel. Everything else is installed against tested versions.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[all,dev]'
	touch $@

test: setup
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/shufflekit models

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
