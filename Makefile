# Set-up and the two everyday jobs. Everything lives in a virtual environment in .venv.
#   make demo   the main job: the worked examples, then a CNN trained on the embedded Fashion-MNIST sample
#   make test   the test suite (.ci/run calls exactly this)
#   make pictures  the README's pictures in docs/ (scripts/make_pictures.sh; MODEL=path.npz draws from that model)
# WITH_TORCH=1 also installs PyTorch 2.13.0 (CPU), the independent oracle for cross-checks; WITH_PEERS=1 installs
# every peer (PyTorch, ONNX and ONNX Runtime, TensorFlow with Keras, JAX, h5py, safetensors), as CI does;
# WITH_MPI=1 installs mpi4py and Open MPI (the 2-rank tests), as CI does.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
comma := ,
EXTRAS := test$(if $(filter 1,$(WITH_TORCH)),$(comma)torch)$(if $(filter 1,$(WITH_PEERS)),$(comma)peers)$(if $(filter 1,$(WITH_MPI)),$(comma)mpi)
DEMO_EPOCHS ?= 2

.PHONY: demo test test-boundscheck install clean clean-cache pictures

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: install
	$(PY) cli.py demo
	$(PY) cli.py train --data fashion-mnist-small --epochs $(DEMO_EPOCHS) --out runs/demo --overwrite

pictures: install
	PYTHON=$(PY) scripts/make_pictures.sh $(MODEL)

# The whole suite, then the fast engine's agreement tests once more with Numba's bounds checks compiled in
# (in a cache of their own: the checked kernels must not replace the fast ones).
test: install
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-boundscheck

test-boundscheck: install
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(CURDIR)/.numba-boundscheck HYPOTHESIS_PROFILE=boundscheck \
		$(PY) -m pytest -q -p no:cacheprovider $(wildcard tests/test_fast_*.py)

# Numba checks a cached kernel against its own file only: after editing a helper that kernels of other
# files call (fastcnn/_blas.py, _runtime.py), remove the compiled kernels.
clean-cache:
	rm -rf .numba-boundscheck
	find fastcnn -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
