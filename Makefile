# gansweep: `make run` (install, data, the quickstart grid and its report) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export GANSWEEP_DATA ?= $(CURDIR)/data
OUT    ?= runs

.PHONY: install data data-test run test clean

# The venv is rebuilt when pyproject.toml or constraints.txt (the versions pinned) changes. pip resolves
# torch's CUDA build from the registry (about 6 GB, ~90 s here); it runs on CPU-only machines too. pip
# byte-compiles the venv's ~15,000 modules on one core (48 s here); compileall -j 0 does it on every core
# instead, and skips the packages' own test suites (3,347 modules nothing imports: 38 s -> 30 s here). Not compiling at all is
# slower: where PYTHONDONTWRITEBYTECODE is set (it is on this machine) every process (each test's CLI, each
# Ray worker) would compile its ~4,400 modules again.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -c constraints.txt -e '.[test]'
	touch $@

# A step of its own, so that `make test` runs it beside the data's preparation (one core, ~30 s).
$(VENV)/.compiled: $(VENV)/.installed
	$(BIN)/python -m compileall -q -j 0 -x '/tests/' $(VENV)/lib > /dev/null || true
	touch $@

install: $(VENV)/.compiled

# Fashion-MNIST offline: Debian's dataset-fashion-mnist when apt can install it (as root, or with
# password-less sudo), else `gansweep data prepare` falls back to torchvision's download.
data: $(VENV)/.installed
	@bash .ci/debian-fashion-mnist || echo "note: Debian's dataset-fashion-mnist is not installed; trying torchvision's download"
	$(BIN)/gansweep data prepare fashion_mnist --root $(GANSWEEP_DATA)

# The tests also run the Pennisi tables on CIFAR-10, from the JPEG archive in ../shared/data.
data-test: data
	$(BIN)/gansweep data prepare cifar10 --root $(GANSWEEP_DATA)

run: install data
	$(BIN)/gansweep run quickstart --profile converge --out $(OUT)
	$(BIN)/gansweep report quickstart --out $(OUT)

# Two pytest workers (pytest-xdist): the tests that read the shared smoke run (tests/conftest.py marks them)
# run on one, in order; every other test on the other. Run serially, the suite left a core idle ~40% of
# the time (driver start-ups, the resume tests' pauses between epochs).
test:
	$(MAKE) -j 2 data-test $(VENV)/.compiled
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15 tests

clean:
	rm -rf $(VENV) runs .pytest_cache
