"""Fidelity against speed for several models: low-level AUC against CPU time per shower, ours
beside Geant4 and the published CaloChallenge dataset-2 points (twinforge.bench.pareto).

    .venv/bin/python benchmarks/pareto.py \
        --ours "vae-par04=bench-vae.json" "flow=bench-flow.json@0.813" "old=0.9:0.88:0.92@3.1" \
        --geant4 bench-vae.json --out docs/figures/pareto.png

``--ours`` takes, per model, ``NAME=BENCH.json`` (a ``twinforge bench`` result made with
``--classifier``: its AUC, fastest CPU time at batch 1000 and training cost),
``NAME=BENCH.json@AUC[:MIN:MAX]`` (the AUC given, e.g. from
``benchmarks/classifier_sample_size.py``) or ``NAME=AUC[:MIN:MAX]@MS`` (numbers only).
``--geant4 BENCH.json``: Geant4 at AUC 0.5 and its CPU time from that bench run (the spectrum's
mean when timed). Prints the Markdown table; writes the figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from twinforge.bench.pareto import (
    ParetoPoint,
    geant4_point,
    model_point,
    pareto_table,
    published_points,
    write_pareto,
)


def _auc(text: str) -> dict[str, float]:
    values = [float(v) for v in text.split(":")]
    auc, lo, hi = values * 3 if len(values) == 1 else values
    return {"auc": auc, "auc_min": lo, "auc_max": hi}


def _bench(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: cannot read the bench result ({exc})") from None


def ours(text: str) -> ParetoPoint:
    name, _, rest = text.partition("=")
    source, _, auc = rest.partition("@")
    if not source.endswith(".json"):  # AUC[:MIN:MAX]@MS
        low = _auc(source)
        return ParetoPoint(name, **low, ms=float(auc), source="ours", note="given")
    result = _bench(Path(source))
    if auc:
        result.setdefault("fidelity", {})["classifier_low"] = _auc(auc)
    point = model_point(result, name=name)
    if point is None:
        raise SystemExit(f"{source}: no low-level AUC (give NAME=BENCH.json@AUC) or no batch 1000")
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", nargs="+", default=[], help="see the module docstring")
    parser.add_argument("--geant4", type=Path, help="a bench result that timed Geant4")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    points = [ours(text) for text in args.ours]
    if args.geant4 is not None:
        g4 = geant4_point(_bench(args.geant4))
        if g4 is None:
            raise SystemExit(f"{args.geant4}: Geant4 was not timed")
        points.append(g4)
    points += published_points("2")
    write_pareto(points, args.out)
    print(pareto_table(points))


if __name__ == "__main__":
    main()
