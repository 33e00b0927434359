"""Our classifier protocol against the CaloChallenge's own evaluate.py, on the same two files.

    .venv/bin/python benchmarks/calochallenge_crosscheck.py REFERENCE.h5 GENERATED.h5 \
        --challenge-code DIR [--runs 3] [--modes cls-low cls-high] [--out crosscheck.json]

DIR is the ``code/`` folder of a checkout of the CaloChallenge evaluation (the public
``CaloChallenge/homepage`` repository: evaluate.py, HighLevelFeatures.py, XMLHandler.py, ...);
twinforge does not ship it. Both files must be dataset-2 shower files (6480 voxels; twinforge's
files are CaloChallenge-compatible). Their code runs in a temporary copy of DIR, unchanged but
for one line: its fixed-count train/test/val split for dataset 2 (60k/20k/20k events, so it needs
100k showers per file) is replaced by its own proportional split (60/20/20). The reference file is
copied beside it, because evaluate.py writes a pickle of reference features next to the
reference; the pickle is deleted before every run, so their code never reads an old one. Their
runs draw fresh random splits and initialisations each time (NumPy/torch global state): the
spread over ``--runs`` is their seed spread. They train in float64, on a GPU when torch sees one.

Our side: :func:`twinforge.validation.classifier.train_classifier` with the challenge budget,
seeds 0 .. runs-1, on the suite's inputs with the challenge's threshold (0.5 keV / 0.033 =
15.1515 keV; the suite uses a siw file's recorded 15.15 keV, a difference of 1.5 eV), low level
``[log10 E_inc, voxels / E_inc]``, the 362 high-level features), float32 and, with
``--float64``, float64 too.

Agreement (the issue's criterion): |mean(ours) - mean(theirs)| <= max(0.02, combined spread),
the combined spread being the mean of the two min-max ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.showers import ShowerFile
from twinforge.showers.io import atomic_write_text
from twinforge.validation.classifier import ClassifierConfig, low_level_features, train_classifier
from twinforge.validation.observables import compute_observables
from twinforge.validation.suite import CALOCHALLENGE_THRESHOLDS, apply_threshold

_SPLIT_LINE = "train_data, test_data, val_data = ttv_split(source_array, reference_array,"
_RESULT = re.compile(r"Final result of classifier test \(AUC / JSD\):\s*([\d.]+) / ([\d.-]+)")


def _stats(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "values": [float(v) for v in arr],
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def ours(
    reference: Path, generated: Path, runs: int, modes: list[str], dtypes: list[str]
) -> dict[str, Any]:
    """Our protocol, challenge budget, ``runs`` seeds per mode and dtype."""
    threshold = CALOCHALLENGE_THRESHOLDS["2"]
    samples = []
    for path in (reference, generated):
        with ShowerFile(path) as f:
            cond, showers = f.read()
            readout = f.readout
        assert readout is not None, f"{path}: no binning stored"
        showers = apply_threshold(showers, threshold)
        obs = compute_observables(showers, cond.energy, readout)
        samples.append(
            {
                "cls-low": low_level_features(showers, cond.energy),
                "cls-high": obs.high_level_matrix().astype(np.float32),
            }
        )
    out: dict[str, Any] = {}
    for mode in modes:
        for dtype in dtypes:
            aucs, jsds, seconds, best = [], [], [], []
            for seed in range(runs):
                config = ClassifierConfig(seed=seed, dtype=dtype)
                result = train_classifier(samples[0][mode], samples[1][mode], config, name=mode)
                aucs.append(result.auc)
                jsds.append(result.jsd)
                seconds.append(result.seconds)
                best.append(result.best_epoch)
                print(
                    f"ours {mode} {dtype} seed {seed}: AUC {result.auc:.4f} JSD "
                    f"{result.jsd:.4f} best epoch {result.best_epoch} "
                    f"({result.seconds:.1f} s, {result.device})",
                    flush=True,
                )
            out[f"{mode}/{dtype}"] = {
                "auc": _stats(aucs),
                "jsd": _stats(jsds),
                "best_epoch": best,
                "seconds": seconds,
            }
    return out


def theirs(
    reference: Path,
    generated: Path,
    code: Path,
    runs: int,
    modes: list[str],
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """The challenge's evaluate.py (proportional split), ``runs`` times per mode."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="calochallenge-") as tmp:
        work = Path(tmp) / "code"
        shutil.copytree(code, work)
        script = work / "evaluate.py"
        text = script.read_text()
        call = text[text.index(_SPLIT_LINE) :]
        call = call[: call.index(")") + 1]
        if "dataset=args.dataset" not in call:
            raise SystemExit(f"{script}: the ttv_split call is not the expected one: {call!r}")
        script.write_text(text.replace(call, call.replace("dataset=args.dataset", "dataset=None")))
        ref_copy = Path(tmp) / "reference.hdf5"
        shutil.copyfile(reference, ref_copy)
        logs = Path(log_dir) if log_dir is not None else None
        env = {**os.environ, "MPLBACKEND": "Agg"}
        for mode in modes:
            aucs, jsds, seconds = [], [], []
            for run in range(runs):
                ref_copy.with_suffix(".pkl").unlink(missing_ok=True)  # never read an old pickle
                results = Path(tmp) / f"results-{mode}-{run}"
                results.mkdir()
                cmd = [
                    sys.executable,
                    "evaluate.py",
                    "-i",
                    str(generated.resolve()),
                    "-r",
                    str(ref_copy),
                    "-m",
                    mode,
                    "-d",
                    "2",
                    "--output_dir",
                    str(results),
                ]
                start = time.perf_counter()
                proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
                seconds.append(time.perf_counter() - start)
                if logs is not None:  # kept: the temporary folder goes
                    logs.mkdir(parents=True, exist_ok=True)
                    (logs / f"evaluate-{mode}-{run}.txt").write_text(proc.stdout + proc.stderr)
                match = _RESULT.findall(proc.stdout)
                if proc.returncode != 0 or not match:
                    tail = (proc.stdout + proc.stderr)[-3000:]
                    raise SystemExit(f"evaluate.py {mode} run {run} failed:\n{tail}")
                auc, jsd = map(float, match[-1])
                aucs.append(auc)
                jsds.append(jsd)
                print(
                    f"theirs {mode} run {run}: AUC {auc:.4f} JSD {jsd:.4f} ({seconds[-1]:.1f} s)",
                    flush=True,
                )
            out[mode] = {"auc": _stats(aucs), "jsd": _stats(jsds), "seconds": seconds}
    return out


def compare(our: dict[str, Any], their: dict[str, Any]) -> dict[str, Any]:
    """Per mode and dtype: difference of the mean AUCs, the tolerance, agreement."""
    out = {}
    for key, mine in our.items():
        mode = key.split("/")[0]
        other = their[mode]["auc"]
        a = mine["auc"]
        spread = 0.5 * ((a["max"] - a["min"]) + (other["max"] - other["min"]))
        tolerance = max(0.02, spread)
        diff = a["mean"] - other["mean"]
        out[key] = {
            "ours": a["mean"],
            "theirs": other["mean"],
            "difference": diff,
            "tolerance": tolerance,
            "agree": abs(diff) <= tolerance,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("generated", type=Path)
    parser.add_argument("--challenge-code", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--modes", nargs="+", default=["cls-low", "cls-high"], choices=["cls-low", "cls-high"]
    )
    parser.add_argument("--float64", action="store_true", help="our classifier in float64 too")
    parser.add_argument("--skip-theirs", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (args.challenge_code / "evaluate.py").is_file() and not args.skip_theirs:
        raise SystemExit(f"{args.challenge_code}: no evaluate.py (the CaloChallenge code/ folder)")
    with ShowerFile(args.reference) as a, ShowerFile(args.generated) as b:
        if a.n_events != b.n_events:  # evaluate.py's ttv_split asserts equal sizes
            raise SystemExit(
                f"{args.reference} has {a.n_events} showers, {args.generated} {b.n_events}: "
                "the challenge's code needs files of equal size"
            )
    import torch

    dtypes = ["float32", "float64"] if args.float64 else ["float32"]
    report: dict[str, Any] = {
        "reference": str(args.reference),
        "generated": str(args.generated),
        "runs": args.runs,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "date": time.strftime("%Y-%m-%d"),
    }

    def save() -> None:
        if args.out:
            atomic_write_text(args.out, json.dumps(report, indent=2))

    report["ours"] = ours(args.reference, args.generated, args.runs, args.modes, dtypes)
    save()
    if not args.skip_theirs:
        report["theirs"] = theirs(
            args.reference,
            args.generated,
            args.challenge_code,
            args.runs,
            args.modes,
            None if args.out is None else args.out.parent / "evaluate-logs",
        )
        report["comparison"] = compare(report["ours"], report["theirs"])
        save()
        for key, row in report["comparison"].items():
            print(
                f"{key}: ours {row['ours']:.4f}, theirs {row['theirs']:.4f}, difference "
                f"{row['difference']:+.4f}, tolerance {row['tolerance']:.4f}: "
                f"{'agree' if row['agree'] else 'DISAGREE'}"
            )
    if not args.out:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
