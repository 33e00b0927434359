#!/usr/bin/env bash
# Issue 17's model-operations studies, end to end and resumable (README.md beside this file).
# Run in an empty work directory: bash /path/to/benchmarks/model_ops/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TF="${TWINFORGE:-twinforge}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
CAT=(-c "$PWD/catalog.sqlite")

for name in siw-train pbsi-train siw-test pbsi-test; do   # Geant4 showers
  out="data/modelops/modelops-$name/modelops-$name.h5"
  [ -f "$out" ] && continue
  "$TF" -q campaign run "$HERE/$name.yaml" "${CAT[@]}"
  "$TF" -q campaign merge "$HERE/$name.yaml" "${CAT[@]}"
done
[ -d models/modelops-vae-siw ] || "$TF" -q train "$HERE/vae-siw.yaml" "${CAT[@]}"
"$TF" -q scale "$HERE/scaling-siw.yaml" "${CAT[@]}"
"$TF" -q scale "$HERE/adaptation-scratch.yaml" "${CAT[@]}"
"$TF" -q scale "$HERE/adaptation-init.yaml" "${CAT[@]}"
[ -f data/modelops/siw-train-val30.h5 ] || "$TF" -q showers split \
  data/modelops/modelops-siw-train/modelops-siw-train.h5 --split val --val-fraction 0.3 \
  -o data/modelops/siw-train-val30.h5
"$TF" -q tune "$HERE/tune-siw.yaml" "${CAT[@]}"
# best against default: the searched values of the best trial, 3 training seeds each, test set
"${PYTHON:-python}" - "$HERE" <<'PY'
import sys, yaml
here = sys.argv[1]
best = yaml.safe_load(open("studies/modelops-vae-siw/best-train.yaml"))
space = yaml.safe_load(open(f"{here}/tune-siw.yaml"))["space"]
def get(d, path):
    for part in path.split("."):
        d = d[part]
    return d
params = {path: get(best, path) for path in space}
study = {
    "kind": "scaling", "name": "modelops-best-vs-default", "train": f"{here}/vae-siw.yaml",
    "reference": "data/modelops/modelops-siw-test/modelops-siw-test.h5",
    "figures": ["fpd", "kpd"],
    "model_sizes": [{"label": "default", "params": {"model.config.hidden": [256, 128]}},
                    {"label": "best", "params": params}],
    "seeds": [0, 1, 2], "executor": {"kind": "dask", "workers": 2},
    "output": "scaling/{name}",
}
yaml.safe_dump(study, open("best-vs-default.yaml", "w"), sort_keys=False)
PY
"$TF" -q scale best-vs-default.yaml "${CAT[@]}"
# the validation protocol's high-level classifier on the six best/default models, and on Geant4
# train vs test (the floor): one `twinforge validate` each
printf 'kind: validation\nmetrics: [classifier_high]\nnoise_floor: false\nenergy_bins: 0\nclassifier_seeds: [0, 1, 2]\n' > auc_high.yaml
TEST=data/modelops/modelops-siw-test/modelops-siw-test.h5
[ -f auc/floor/metrics.json ] || "$TF" -q validate -r "$TEST" \
  -g data/modelops/modelops-siw-train/modelops-siw-train.h5 --max-showers 1500 -o auc/floor \
  --config auc_high.yaml --no-tracking "${CAT[@]}" --overwrite
for point in scaling/modelops-best-vs-default/points/model-*; do
  out="auc/$(basename "$point")"
  [ -f "$out/metrics.json" ] || "$TF" -q validate -r "$TEST" --model "$point/model" -o "$out" \
    --config auc_high.yaml --no-tracking "${CAT[@]}" --overwrite
done
