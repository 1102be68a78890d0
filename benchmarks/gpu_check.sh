#!/usr/bin/env bash
# The GPU figures of the speed harness in one command, for a session that is lent a GPU machine:
#
#   bash benchmarks/gpu_check.sh        # writes env.txt and speed.json into $OUT (./gpu_check_out without one)
#
# FLUX.1-schnell's transformer and VAE at their real sizes with random weights (nothing is downloaded), in bf16:
# s/NFE against batch size, decode with the full and the tiny VAE, peak memory, the memory and time constants
# beside the ones the engine assumes ("calibration"), and RBF at 500 NFE at 1024^2 projected for rbf.batch 1 and
# 8 (the paper: 635 s per image on an A6000). Packages the machine lacks travel as wheels in .whl/ (git-ignored;
# the H200 image has torch and transformers but not diffusers), fetched beforehand where pip works:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl diffusers==0.42.1 importlib_metadata
#
# LIMIT (seconds, default 480) bounds the harness so that the command ends inside one call's 10 minutes.
set -uo pipefail
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
export PYTHONPATH=.
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:.
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__)"
} > "$out/env.txt" 2>&1
cat "$out/env.txt"
PYTHONUNBUFFERED=1 timeout "${LIMIT:-480}" python3 benchmarks/gpu_t2i_bench.py speed --random-weights --size 1024 \
  --batches 1,2,4,8,16 --repeats 3 | tee "$out/speed.json"
