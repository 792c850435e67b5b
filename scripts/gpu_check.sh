#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: the CUDA tests (`-m gpu`), the whole suite with device=auto landing
# on the GPU, and the dream's speed on the GPU at N up to 4096 beside ALE Tennis on one CPU thread
# (`glassworld bench env`, float32 and bfloat16). Writes logs and JSON into OUT (default runs/gpu_check).
#
#   bash scripts/gpu_check.sh [OUT] [CHECKPOINT]      # CHECKPOINT: a world file or id (default GlassTennis-v0)
#
# SUITE_ARGS: extra pytest arguments for both test runs (e.g. --ignore=tests/data/test_videos.py where PyAV is
# missing); SUITE_TIMEOUT: seconds for the whole suite (default 300).
# Runs from the repository root with the project importable (installed, or PYTHONPATH=.). CI has no GPU: this is
# run by hand on a machine with one; the numbers it wrote are in docs/results/bench_env_cuda*.json.
set -uo pipefail
out=${1:-runs/gpu_check}
world=${2:-GlassTennis-v0}
mkdir -p "$out"
py=${PYTHON:-python3}
export SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy MPLBACKEND=Agg PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$out/gpu.txt"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt" || exit 1
for prec in float32 bfloat16; do
  "$py" -m worldmodel.cli bench env checkpoint="$world" devices=[cuda] "num_envs=[1,64,1024,4096]" threads=1 \
    seconds=3 ale_seconds=3 memory_steps=0 precision=$prec out="$out/bench_env_cuda_$prec.json" 2>&1 | tail -n 30
done
"$py" -m pytest -q -rs -m gpu -p no:cacheprovider ${SUITE_ARGS:-} 2>&1 | tee "$out/pytest_gpu.log" | tail -n 15
nproc=$(nproc)
if "$py" -c "import xdist" 2>/dev/null; then par="-n $(( nproc < 12 ? nproc : 12 ))"; else par=""; fi
timeout "${SUITE_TIMEOUT:-300}" "$py" -m pytest -q -rs $par -p no:cacheprovider ${SUITE_ARGS:-} 2>&1 \
  | tee "$out/pytest_all.log" | tail -n 40
