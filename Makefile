# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pip-installed ROS packages look themselves up through the ament index in the venv.
export AMENT_PREFIX_PATH := $(abspath $(VENV))
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test bench clean

setup: $(STAMP)

# requirements-bench.txt (transformers, for the peer networks) is installed too: the tests
# run the benchmark code on tiny inputs.
$(STAMP): requirements.txt requirements-test.txt requirements-bench.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-test.txt -r requirements-bench.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/jointdistill demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest test -q

# Writes docs/benchmarks.md and docs/benchmarks.json (several minutes on a 2-core CPU).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build install log runs
