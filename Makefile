# The README's two commands: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: quickstart test venv clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "jaxsuite needs Python >= 3.11; set PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python

# Installs jaxsuite and trains every NDDR-CNN variant on multi_digits (data from scikit-learn's wheel:
# no download, no ../shared), 3 seeds, then prints the mean ± std table.
quickstart: venv
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/jaxsuite reproduce nddr --preset quick --seeds 0,1,2 --out results

# Installs jaxsuite with its test extra and runs the fast test suite (`-m "not slow"`).
test: venv
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache results runs
