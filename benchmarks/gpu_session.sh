#!/usr/bin/env bash
# One device session for the GPU figures in benchmarks/RESULTS.md: the models benchmark
# (dynamics MFU, generation frames/s) then the small tokenizer trained on carried shards.
#   here:  .venv/bin/python benchmarks/make_gpu_shards.py .gpu/shards
#   there: bash benchmarks/gpu_session.sh .gpu/shards "$OUT"     (carry .gpu)
# Needs torch, numpy, opencv, pyarrow on the GPU machine; no Ray, no webdataset.
# MODELS_ARGS / TOKENIZER_ARGS add options to each script; the next runs recorded in
# benchmarks/RESULTS.md are MODELS_ARGS="--batches 16,8,4 --compile-scope model" and
# TOKENIZER_ARGS="--batch-size 4".
set -u
shards=$1 out=$2
export PYTHONUNBUFFERED=1
mkdir -p "$out"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$out/machine.txt"
if [ -z "${SKIP_MODELS:-}" ]; then
  timeout "${MODELS_TIMEOUT_S:-200}" python3 benchmarks/models_gpu.py --seconds "${MODELS_SECONDS:-60}" ${MODELS_ARGS:-} 2>&1 | tee "$out/models_gpu.txt"
fi
timeout "${TOKENIZER_TIMEOUT_S:-380}" python3 benchmarks/tokenizer_gpu.py "$shards" --out /tmp/tokenizer_gpu \
  --minutes "${TOKENIZER_MINUTES:-5.5}" ${TOKENIZER_ARGS:-} 2>&1 | tee "$out/tokenizer_gpu.txt"
cp /tmp/tokenizer_gpu/report.json /tmp/tokenizer_gpu/recon_*.png "$out/" 2>/dev/null
cp /tmp/tokenizer_gpu/logs/metrics.jsonl "$out/tokenizer_metrics.jsonl" 2>/dev/null
ls -la "$out"
