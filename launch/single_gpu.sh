#!/usr/bin/env bash
# One GPU: install jaxsuite with CUDA JAX and run a method. Usage: launch/single_gpu.sh nddr --preset paper
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv && . .venv/bin/activate
pip install --quiet -e . "jax[cuda12]"
exec jaxsuite run "$@"
