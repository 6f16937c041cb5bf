#!/usr/bin/env bash
# GPU throughput table (benchmarks/gpu.py): DCGAN-64 and the ContraGAN tutorial model in fp32, bf16 and
# bf16 + --compile, img/s and peak memory. On a machine without CUDA it says so and exits 0.
#     bash benchmarks/gpu.sh [--steps 200] [--warmup 60] [--window 20]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[ -x "$python" ] || python=python3
exec "$python" benchmarks/gpu.py "$@"
