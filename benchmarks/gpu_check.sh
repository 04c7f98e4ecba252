#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, from a clone of the repository, install the
# CUDA build of JAX, confirm JAX computes on the GPU, and run the throughput benchmark (the
# shipped training step at batch 4 … 512, and data-parallel over every GPU it sees) and the
# gradient check (EqProp against implicit autodiff, float32 and float64). Their JSON and PNG
# go to benchmarks/results/gpu/ (the CPU results stay as they are). About 10 minutes.
#
#   bash benchmarks/gpu_check.sh            # the full runs
#   bash benchmarks/gpu_check.sh --quick    # a few minutes: the benchmarks' quick modes
set -euo pipefail
cd "$(dirname "$0")/.."
quick="${1:-}"

python -m pip install -q -e ".[cuda]"
python - <<'PY'
import jax
import jax.numpy as jnp

assert jax.default_backend() == "gpu", f"JAX does not see a GPU: {jax.devices()}"
x = jnp.ones((1024, 1024))
assert float((x @ x)[0, 0]) == 1024.0
print("JAX on", jax.devices())
PY

export KIRCHHOFF_BENCHMARK_RESULTS="$PWD/benchmarks/results/gpu"
mkdir -p "$KIRCHHOFF_BENCHMARK_RESULTS"
n_gpus="$(python -c 'import jax; print(len(jax.devices()))')"
devices="$(python -c "print(','.join(str(2**k) for k in range(8) if 2**k <= $n_gpus))")"
python benchmarks/throughput.py $quick
python benchmarks/throughput.py --devices "$devices" $quick
python benchmarks/gradient_check.py $quick
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$KIRCHHOFF_BENCHMARK_RESULTS/gpu.csv" || true
ls -l "$KIRCHHOFF_BENCHMARK_RESULTS"
