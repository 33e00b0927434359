#!/usr/bin/env bash
# Issue 18's fidelity run (docs/benchmarks.md, "The fidelity run"), end to end and resumable:
# run it again after any stop and it goes on where it stopped. In a work directory:
#   bash /path/to/benchmarks/fidelity/run.sh
# Steps: the 100k training campaign (~5.6 core-hours of Geant4), the 10k test campaign (~0.8),
# training the layer-wise flow (the long part, in as many parts as it takes), sampling at the
# test set's conditions, the converged low-level classifier (3 seeds, per-energy bins), and the
# benchmark with its Pareto figure. FLOOR=file.h5 (a second Geant4 sample of >= 10k showers,
# e.g. examples/siw-electrons.yaml merged) also validates Geant4 against Geant4 at the same
# size: the floor. PART_MINUTES=N trains for N minutes and stops with a checkpoint at that step
# (run again to resume; nothing is lost). TRAIN_ONLY=1 stops after training.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TF="${TWINFORGE:-twinforge}"
CAT=(-c "$PWD/catalog.sqlite")
NAME=siw-electrons-flow-layerwise-100k
TRAIN=campaigns/siw-electrons-1-64GeV-100k/siw-electrons-1-64GeV-100k.h5
TEST=campaigns/siw-electrons-1-64GeV-test/siw-electrons-1-64GeV-test.h5

campaign() {  # config, merged file
  if [ ! -f "$2" ]; then
    OMP_NUM_THREADS=1 "$TF" -q campaign run "$1" "${CAT[@]}"
    "$TF" -q campaign merge "$1" "${CAT[@]}"
  fi
}
campaign "$ROOT/examples/siw-electrons-100k.yaml" "$TRAIN"
campaign "$ROOT/examples/siw-electrons-test.yaml" "$TEST"
if [ ! -d "models/$NAME" ]; then
  part=()  # PART_MINUTES: stop the training after that long; the next run resumes it
  [ -z "${PART_MINUTES:-}" ] || part=(timeout --signal=TERM "${PART_MINUTES}m")
  rc=0
  OMP_NUM_THREADS=2 "${part[@]}" "$TF" -q train "$HERE/flow-layerwise-100k.yaml" "${CAT[@]}" \
    --no-tracking || rc=$?
  if [ "$rc" = 124 ]; then echo "training part done: run again to resume"; exit 0; fi
  [ "$rc" = 0 ] || exit "$rc"
fi
[ -z "${TRAIN_ONLY:-}" ] || exit 0
[ -f "$NAME-test.h5" ] || "$TF" -q sample "models/$NAME" --conditions-from "$TEST" -o "$NAME-test.h5"
[ -f "reports/$NAME/metrics.json" ] || OMP_NUM_THREADS=2 "$TF" -q validate -r "$TEST" \
  -g "$NAME-test.h5" --model "models/$NAME" --config "$HERE/validation-low.yaml" \
  -o "reports/$NAME" "${CAT[@]}" --no-tracking
if [ -n "${FLOOR:-}" ] && [ ! -f reports/floor/metrics.json ]; then
  OMP_NUM_THREADS=2 "$TF" -q validate -r "$TEST" -g "$FLOOR" --config "$HERE/validation-low.yaml" \
    -o reports/floor "${CAT[@]}" --no-tracking
fi
"$TF" -q bench "models/$NAME" --batch-sizes 1,100,1000,10000 --backends torch,onnx --threads 2 \
  --geant4-showers 20 --spectrum 1GeV-64GeV --spectrum-showers 32 \
  --classifier "reports/$NAME/metrics.json" -o "bench-$NAME.json" --plot "bench-$NAME.png" \
  --pareto "pareto-$NAME.png" "${CAT[@]}" --no-tracking
