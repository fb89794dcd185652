#!/usr/bin/env bash
# Build .whl/site: the packages a GPU machine WITHOUT network needs beyond an image that already holds torch,
# transformers, accelerate, numpy, scipy, click, rich, jinja2, pyyaml, psutil, httpx, sacrebleu and nvidia-ml-py
# (bitsandbytes for quant=bnb-*, transformers serve's server stack for the served phase, httpx-sse for the
# client), for CPython 3.12 on x86-64, fetched here from PyPI. torchao goes to .whl/ao, put on PYTHONPATH only
# where wanted (transformers imports it inside every from_pretrained once it is importable).
# Then, on the GPU machine: PYTHONPATH=$PWD/.whl/site:$PWD python3 scripts/gpu_check.py (or scripts/gpu_session.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PLAT="--python-version 3.12 --implementation cp --only-binary=:all: --no-deps"
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  PLAT="$PLAT --platform $p"
done
rm -rf .whl/site .whl/ao
$PY -m pip install -q $PLAT --target .whl/site bitsandbytes==0.50.2 openai==2.54.0 fastapi==0.124.4 \
  starlette==0.49.3 uvicorn==0.39.0 pydantic==2.12.5 pydantic_core==2.41.5 annotated-types==0.8.0 \
  typing-inspection==0.4.5 annotated-doc==0.0.7 jiter==0.19.0 distro==1.9.0 sniffio==1.3.1 httpx-sse==0.4.3 \
  typing_extensions==4.16.0
$PY -m pip install -q $PLAT --target .whl/ao torchao==0.18.0
# bitsandbytes ships one library per CUDA release (about 40 MB): keep the CPU one and CUDA 13's
find .whl/site/bitsandbytes -name 'libbitsandbytes_*.so' ! -name '*_cpu.so' ! -name "*_cuda${BNB_CUDA:-130}.so" -delete
rm -rf .whl/site/bin .whl/ao/bin .whl/ao/test
find .whl -name __pycache__ -prune -exec rm -rf {} +
du -sh .whl/site .whl/ao
