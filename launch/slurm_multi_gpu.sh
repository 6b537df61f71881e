#!/usr/bin/env bash
# Several GPUs on one or more nodes under SLURM: one process per GPU, jax.distributed initialised from
# the SLURM environment (jaxsuite.core.sharding.init_distributed), the batch sharded over every GPU.
# Usage: sbatch --nodes=2 --gpus-per-node=8 launch/slurm_multi_gpu.sh nddr --preset paper --workdir /shared/runs/nddr
#SBATCH --job-name=jaxsuite
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --signal=TERM@120          # SIGTERM two minutes before the limit: jaxsuite saves a checkpoint
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
. .venv/bin/activate               # made once with: pip install -e . "jax[cuda12]"
export JAX_COORDINATOR_PORT="${JAX_COORDINATOR_PORT:-12345}"
# --workdir must be on a file system every node sees; a resubmitted job resumes from its checkpoint.
srun --kill-on-bad-exit=1 jaxsuite run "$@"
