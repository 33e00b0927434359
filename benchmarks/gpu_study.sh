#!/usr/bin/env bash
# The GPU half of the issue-14 figures (docs/validation.md, docs/benchmarks.md), for a machine
# reached through a small transfer limit (64 MiB a call), in two stages run from the repository
# root with OUT set to the folder whose files come back:
#
#   stage 1: .devdata/{g4test,g4floor,flow}.npz         full suite of the flow (floor against a
#            second Geant4 sample), the CaloChallenge cross-check, the sample-size study
#   stage 2: .devdata/{g4test,fm}.npz + .devdata/models/{vae-par04,gan}
#            vae-par04 and gan sampled there at the test set's conditions, flow matching packed;
#            the suite of each (no floor: stage 1's is the same reference, size and budget), the
#            sample-size study of the weak model (vae-par04)
#
# Prepared here (see docs/validation.md for the whole recipe):
#   benchmarks/pack_showers.py pack TEST.h5 .devdata/g4test.npz         (lossless, ~20 MB / 10k)
#   .devdata/cc = the CaloChallenge code/ folder; .whl = wheels of pydantic (+ core, annotated-types,
#   typing-inspection) and zuko for the machine's Python
# Usage: OUT=... [DEVDATA=.devdata] bash benchmarks/gpu_study.sh 1|2
set -uo pipefail
stage=${1:?stage 1 or 2}
out=${OUT:-gpu-out}
dev=${DEVDATA:-.devdata}
data=/tmp/gpu-study
mkdir -p "$out" "$data"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD/src
else
    export PYTHONPATH=$PWD/src
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
lscpu | grep -E "Model name|^CPU\(s\)"
step() { echo "=== $(date +%T) $*"; }
for f in "$dev"/*.npz; do
    python3 benchmarks/pack_showers.py unpack "$f" "$data/$(basename "$f" .npz).h5" || exit 1
done

if [ "$stage" = 1 ]; then
    step "full suite: flow vs Geant4, floor against a second Geant4 sample"
    timeout 300 python3 benchmarks/validation_suite.py --reference $data/g4test.h5 \
        --generated $data/flow.h5 --floor-reference $data/g4floor.h5 --cache-dir "$out/cache" \
        --metrics-out "$out/metrics-flow.json" --out "$out/suite-gpu.json" 2>&1 | grep -v epoch
    step "CaloChallenge cross-check"
    timeout 300 python3 benchmarks/calochallenge_crosscheck.py $data/g4test.h5 $data/flow.h5 \
        --challenge-code "$dev/cc" --runs 3 --float64 --out "$out/crosscheck.json"
    step "sample sizes: flow and the floor"
    timeout 240 python3 benchmarks/classifier_sample_size.py $data/g4test.h5 $data/flow.h5 \
        --floor-reference $data/g4floor.h5 --sizes 2000 5000 10000 --seeds 3 \
        --budgets challenge converged --out "$out/sizes-strong.json"
else
    for model in vae-par04 gan; do
        step "sampling $model at the test set's conditions"
        python3 -c "from twinforge.cli import main; main()" sample "$dev/models/$model" \
            --conditions-from $data/g4test.h5 -o $data/$model.h5 --overwrite || exit 1
    done
    for name in vae-par04 gan fm; do
        step "full suite: $name vs Geant4 (no floor)"
        timeout 200 python3 benchmarks/validation_suite.py --reference $data/g4test.h5 \
            --generated $data/$name.h5 --no-floor --metrics-out "$out/metrics-$name.json" \
            --out "$out/suite-$name.json" 2>&1 | grep -v epoch
    done
    step "sample sizes: vae-par04 (weak)"
    timeout 200 python3 benchmarks/classifier_sample_size.py $data/g4test.h5 $data/vae-par04.h5 \
        --sizes 2000 5000 10000 --seeds 3 --budgets challenge converged \
        --out "$out/sizes-weak.json"
fi
step "done"
