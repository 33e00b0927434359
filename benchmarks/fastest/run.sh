#!/usr/bin/env bash
# Issue 18's fastest-model figures (docs/benchmarks.md, "The fastest model"), end to end and
# resumable. Run in a work directory on an otherwise idle machine:
#   bash /path/to/benchmarks/fastest/run.sh
# Geant4: the 10k test set (~15 min on 2 cores) and 3000 training showers (~5 min). Then for
# each of MODELS (default: the three configs beside this script, vae-par04-3k first):
# training (under 2 minutes), the benchmark (~2 minutes; it must run alone: it is a timing),
# samples at the test set's conditions, and the converged low-level classifier on 10k vs 10k
# showers, SEEDS seeds (default 3, ~50 minutes on 2 cores). Each step is skipped when its output
# exists.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TF="${TWINFORGE:-twinforge}"
PY="${PYTHON:-python}"
CAT=(-c "$PWD/catalog.sqlite")
TEST=campaigns/siw-electrons-1-64GeV-test/siw-electrons-1-64GeV-test.h5
TRAIN=data/modelops/modelops-siw-train/modelops-siw-train.h5

if [ ! -f "$TEST" ]; then
  OMP_NUM_THREADS=1 "$TF" -q campaign run "$ROOT/examples/siw-electrons-test.yaml" "${CAT[@]}"
  "$TF" -q campaign merge "$ROOT/examples/siw-electrons-test.yaml" "${CAT[@]}"
fi
if [ ! -f "$TRAIN" ]; then
  OMP_NUM_THREADS=1 "$TF" -q campaign run "$ROOT/benchmarks/model_ops/siw-train.yaml" "${CAT[@]}"
  "$TF" -q campaign merge "$ROOT/benchmarks/model_ops/siw-train.yaml" "${CAT[@]}"
fi
# each model: train, bench (idle machine), sample the test conditions, classifier (SEEDS seeds)
for NAME in ${MODELS:-vae-par04-3k vae-par04-3k-softmax vae-64-3k-softmax}; do
  MODEL=models/siw-electrons-$NAME
  [ -d "$MODEL" ] || OMP_NUM_THREADS=1 "$TF" -q train "$HERE/$NAME.yaml" "${CAT[@]}" --no-tracking
  [ -f "bench-$NAME.json" ] || "$TF" -q bench "$MODEL" --batch-sizes 1,100,1000,10000 \
    --backends torch,onnx --int8 --threads 2 --geant4-showers 20 --spectrum 1GeV-64GeV \
    --spectrum-showers 32 --block-size 64 -o "bench-$NAME.json" --plot "bench-$NAME.png" \
    "${CAT[@]}" --no-tracking
  [ -f "$NAME-test.h5" ] || "$TF" -q sample "$MODEL" --conditions-from "$TEST" -o "$NAME-test.h5"
  [ -f "auc-$NAME.json" ] || OMP_NUM_THREADS=2 "$PY" "$ROOT/benchmarks/classifier_sample_size.py" \
    "$TEST" "$NAME-test.h5" --sizes 10000 --seeds "${SEEDS:-3}" --levels low --budgets converged \
    --out "auc-$NAME.json"
done
