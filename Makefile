# Two entry points (README "Quick start"): `make run` and `make test`.
# TORCH_SPEC pins the torch wheel installed first; on this project's CPU machines
# torch==2.13.0 is the CPU build. On a CUDA machine: make TORCH_SPEC="torch>=2.1,<3" run
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -m "not slow"

.PHONY: setup run test test-all benchmark

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, numpy, scipy, xarray, zarr, arviz, matplotlib, nbclient"
	touch $@

run: setup
	$(VENV)/bin/langevin run

# One BLAS/OpenMP thread per process in tests: the test problems are small, and on a
# 2-core machine threads of NumPy, SciPy and torch (and of test subprocesses) compete.
TEST_ENV := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

test: setup
	$(TEST_ENV) $(PY) -m pytest -q $(PYTEST_ARGS)

test-all: setup
	$(TEST_ENV) $(PY) -m pytest -q

benchmark: setup
	$(PY) benchmarks/step_throughput.py
