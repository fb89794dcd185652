#!/usr/bin/env bash
# One GPU session's checks, in two calls of a few minutes each on a machine without network (scripts/offline_site.sh
# first, on a machine with one; docs/gpu.md says what each part checks):
#   A: the Mistral-7B shapes plain, static cache + compile and bnb-4bit at batch 1/4/16 (the roofline target)
#   B: the same for Gemma-2B, then transformers serve against in-process, a static-compile length sweep,
#      torchao-int4 at batch 1, and the CUDA tests
# Figures and logs go to $GPU_CHECK_OUT (default results/gpu). Knobs: NEW (new tokens, 32), T, T2, T3 (seconds).
case "${1:-}" in A|B) ;; *) echo "usage: scripts/gpu_session.sh A|B" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
OUTDIR=${GPU_CHECK_OUT:-results/gpu}
mkdir -p "$OUTDIR"
export PYTHONPATH=$PWD/.whl/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
NOISE='Failed to load|W12[0-9]{2} |register_constant|warnings.warn'
python3 -c "import torch, transformers, bitsandbytes; print('torch', torch.__version__, 'cuda', torch.version.cuda,
      'transformers', transformers.__version__, 'bitsandbytes', bitsandbytes.__version__)" 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv,noheader
python3 -m pip list 2>/dev/null | grep -i -E "^(vllm|sglang|text-generation|llama|tensorrt|lmdeploy|exllama)" \
  || echo "no serving engine among the image's packages"
export GPU_CHECK_DIR=${GPU_CHECK_DIR:-/tmp/llmbench-gpu} GPU_CHECK_REFERENCE=0 GPU_CHECK_PROMPTS=16
export GPU_CHECK_NEW_TOKENS=${NEW:-32}
check() { timeout "$1" python3 scripts/gpu_check.py 2>&1 | grep -v -E "$NOISE" | tee "$OUTDIR/$2.log"; }
case "${1:-}" in
  A) GPU_CHECK_MODELS=mistral-7b-random GPU_CHECK_JSON=$OUTDIR/a.json check "${T:-280}" a ;;
  B) GPU_CHECK_MODELS=gemma-2b-random GPU_CHECK_SERVED=gemma-2b-random GPU_CHECK_LENGTHS=${LENGTHS:-64,256,1024} \
       GPU_CHECK_JSON=$OUTDIR/b.json check "${T:-260}" b
     PYTHONPATH=$PWD/.whl/ao:$PYTHONPATH GPU_CHECK_MODELS=gemma-2b-random GPU_CHECK_VARIANTS=torchao-int4 \
       GPU_CHECK_BATCH_SIZES=1 GPU_CHECK_PROMPTS=4 GPU_CHECK_JSON=$OUTDIR/c.json check "${T2:-60}" c
     timeout "${T3:-90}" python3 -m pytest -q -m gpu tests/integration/test_cuda.py -p no:cacheprovider 2>&1 | tail -5 ;;
esac
