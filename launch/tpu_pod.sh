#!/usr/bin/env bash
# A TPU pod slice: the same command on every worker; jax.distributed finds the pod's coordinator.
# Usage: TPU=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh nddr --preset paper --workdir gs://bucket/runs/nddr
set -euo pipefail
: "${TPU:?set TPU to the TPU VM name}" "${ZONE:?set ZONE}"
REPO="${REPO:-https://github.com/jaxsuite/jaxsuite.git}"
ARGS="$*"
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "
  set -e
  [ -d jaxsuite ] || git clone $REPO jaxsuite
  cd jaxsuite && python3 -m venv .venv && . .venv/bin/activate
  pip install --quiet -e . 'jax[tpu]'
  jaxsuite run $ARGS
"
