#!/usr/bin/env bash
# The GPU half of the issue-14 figures (docs/validation.md, docs/benchmarks.md), for a machine
# reached through a small transfer limit (64 MiB a call), in two stages run from the repository
# root with OUT set to the folder whose files come back:
#
# All results of a stage come back as one archive, $OUT/results-stage<N>.tgz.
#   stage 1: $DEVDATA/{g4test,g4floor,flow}.npz, $DEVDATA/cc
#            the full suite of the flow (floor against the second Geant4 sample), alone, timed;
#            then in parallel the CaloChallenge cross-check and the sample-size study
#   stage 2: $DEVDATA/g4test.npz and packed samples (fm.npz), $DEVDATA/models/<name>/ (small
#            models, sampled there at the test set's conditions); the suite of every sample in
#            parallel (no floor: stage 1's has the same reference, size and budget), and, with
#            WEAK=<name>, the sample-size study of that (weak) model
#
# Prepared beforehand (docs/validation.md has the whole recipe):
#   benchmarks/pack_showers.py pack TEST.h5 $DEVDATA/g4test.npz     (lossless, ~20 MB per 10k)
#   $DEVDATA/cc: the CaloChallenge code/ folder; .whl: wheels of pydantic, pydantic-core,
#   annotated-types, typing-inspection and zuko for the machine's Python
# Usage: OUT=... DEVDATA=... [WEAK=name] bash benchmarks/gpu_study.sh 1|2
set -uo pipefail
stage=${1:?stage 1 or 2}
dev=${DEVDATA:-.devdata}
data=/tmp/gpu-study
out=/tmp/gpu-results  # everything goes to one archive, $OUT/results-stage$stage.tgz
rm -rf "$out" "$data"
mkdir -p "$out" "$data" "${OUT:=gpu-out}"
save() { tar czf "$OUT/results-stage$stage.tgz" -C "$out" . ; }
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
    python3 benchmarks/pack_showers.py unpack "$f" "$data/$(basename "$f" .npz).h5" &
done
wait
suite() {  # name, extra arguments
    local name=$1; shift
    timeout 200 python3 benchmarks/validation_suite.py --reference $data/g4test.h5 \
        --generated $data/$name.h5 --blas-threads 4 --metrics-out "$out/metrics-$name.json" \
        --out "$out/suite-$name.json" "$@" > "$out/log-suite-$name.txt" 2>&1
    echo "suite $name: exit $?"; tail -4 "$out/log-suite-$name.txt"
}
sizes() {  # name, files...
    local name=$1; shift
    timeout 170 python3 benchmarks/classifier_sample_size.py $data/g4test.h5 "$@" \
        --sizes 2000 5000 10000 --seeds 3 --budgets challenge --out "$out/sizes-$name.json" \
        > "$out/log-sizes-$name.txt" 2>&1
    echo "sizes $name (challenge): exit $?"
    timeout 100 python3 benchmarks/classifier_sample_size.py $data/g4test.h5 "$@" \
        --sizes 2000 5000 --seeds 3 --budgets converged --out "$out/sizes-$name-converged.json" \
        >> "$out/log-sizes-$name.txt" 2>&1
    echo "sizes $name (converged): exit $?"; grep "^|" "$out/log-sizes-$name.txt"
}

if [ "$stage" = 1 ]; then
    step "full suite: flow vs Geant4, floor against a second Geant4 sample (alone: timed)"
    suite flow --floor-reference $data/g4floor.h5 --cache-dir "$out/cache"
    save
    step "CaloChallenge cross-check and sample sizes, in parallel"
    timeout 240 python3 benchmarks/calochallenge_crosscheck.py $data/g4test.h5 $data/flow.h5 \
        --challenge-code "$dev/cc" --runs 3 --float64 --out "$out/crosscheck.json" \
        > "$out/log-crosscheck.txt" 2>&1 &
    sizes strong $data/flow.h5 --floor-reference $data/g4floor.h5 &
    wait
    grep -E "^(ours|theirs|cls)" "$out/log-crosscheck.txt"
    save
else
    for dir in "$dev"/models/*/; do
        [ -d "$dir" ] || continue
        model=$(basename "$dir")
        step "sampling $model at the test set's conditions"
        python3 -c "from twinforge.cli import main; main()" sample "$dir" \
            --conditions-from $data/g4test.h5 -o $data/$model.h5 --overwrite || exit 1
    done
    step "suites of every sample (no floor) and the sample sizes of \$WEAK (${WEAK:-none}), in parallel"
    for f in $data/*.h5; do
        name=$(basename "$f" .h5)
        case $name in g4test|g4floor) ;; *) suite "$name" --no-floor & ;; esac
    done
    [ -n "${WEAK:-}" ] && sizes weak "$data/$WEAK.h5" &
    wait
    save
fi
step "done"
