# Set-up and the two everyday jobs. Everything lives in a virtual environment in .venv.
#   make demo   the main job
#   make test   the test suite (.ci/run calls exactly this)
# WITH_TORCH=1 also installs PyTorch 2.13.0 (CPU), the independent oracle for cross-checks.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
comma := ,
EXTRAS := test$(if $(filter 1,$(WITH_TORCH)),$(comma)torch)

.PHONY: demo test install clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: install
	$(PY) cli.py demo

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
