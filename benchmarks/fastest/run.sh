#!/usr/bin/env bash
# Issue 18's fastest-model figures (docs/benchmarks.md, "The fastest model"), end to end and
# resumable. Run in a work directory on an otherwise idle machine:
#   bash /path/to/benchmarks/fastest/run.sh
# Geant4: the 10k test set (~15 min on 2 cores) and 3000 training showers (~5 min); training
# under 2 minutes; the benchmark ~2 minutes (it must run alone: it is a timing); the
# converged low-level classifier, 3 seeds on 10k vs 10k showers, ~50 minutes on 2 cores.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TF="${TWINFORGE:-twinforge}"
PY="${PYTHON:-python}"
CAT=(-c "$PWD/catalog.sqlite")
TEST=campaigns/siw-electrons-1-64GeV-test/siw-electrons-1-64GeV-test.h5
TRAIN=data/modelops/modelops-siw-train/modelops-siw-train.h5
MODEL=models/siw-electrons-vae-par04-3k

if [ ! -f "$TEST" ]; then
  OMP_NUM_THREADS=1 "$TF" -q campaign run "$ROOT/examples/siw-electrons-test.yaml" "${CAT[@]}"
  "$TF" -q campaign merge "$ROOT/examples/siw-electrons-test.yaml" "${CAT[@]}"
fi
if [ ! -f "$TRAIN" ]; then
  OMP_NUM_THREADS=1 "$TF" -q campaign run "$ROOT/benchmarks/model_ops/siw-train.yaml" "${CAT[@]}"
  "$TF" -q campaign merge "$ROOT/benchmarks/model_ops/siw-train.yaml" "${CAT[@]}"
fi
[ -d "$MODEL" ] || OMP_NUM_THREADS=1 "$TF" -q train "$HERE/vae-par04-3k.yaml" "${CAT[@]}" --no-tracking
"$TF" -q bench "$MODEL" --batch-sizes 1,100,1000,10000 --backends torch,onnx --int8 --threads 2 \
  --geant4-showers 20 --spectrum 1GeV-64GeV --spectrum-showers 32 --block-size 64 \
  -o bench-vae-par04-3k.json --plot bench-vae-par04-3k.png "${CAT[@]}" --no-tracking
[ -f vae-par04-3k-test.h5 ] || "$TF" -q sample "$MODEL" --conditions-from "$TEST" -o vae-par04-3k-test.h5
OMP_NUM_THREADS=2 "$PY" "$ROOT/benchmarks/classifier_sample_size.py" "$TEST" vae-par04-3k-test.h5 \
  --sizes 10000 --seeds 3 --levels low --budgets converged --out auc-vae-par04-3k.json
