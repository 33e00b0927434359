"""Where Geant4's time per shower goes: a sampling profile (Linux ``perf``) grouped by part.

    .venv/bin/python benchmarks/geant4_profile.py --energy 8 --showers 60 --out profile.json

Simulates one warm-up shower, then ``--showers`` electrons of ``--energy`` GeV at normal
incidence on ``--detector`` in this process while ``perf record -e cpu-clock`` samples it, and
sums the samples per part of the work (symbol patterns below): Python, scoring, navigation,
EM physics, stepping, random numbers, maths, thread-local storage. Needs ``perf`` (Debian
``linux-perf``); the geant4-pybind wheel exports its symbols, so no debug build is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

PARTS: list[tuple[str, str]] = [
    ("multiple scattering (Urban)", r"UrbanMsc|G4VMsc|G4VMultipleScattering"),
    ("energy-loss fluctuations", r"Fluctuation"),
    (
        "other EM physics (ionisation, bremsstrahlung, photon processes, cross-section tables)",
        r"G4VEnergyLoss|G4VEmProcess|G4eBrem|G4eIon|G4Moller|G4Bhabha|G4Compton|G4KleinNishina|"
        r"G4PEEffect|G4PairProduction|G4GammaConv|G4eplus|G4VEmModel|G4PhysicsVector|"
        r"G4LossTableManager|G4EmModelManager|G4ParticleChangeFor|G4SauterGavrila|G4ModifiedTsai|"
        r"G4Log|G4Exp|G4Pow",
    ),
    (
        "geometry navigation (navigator, replicas, solids, safety)",
        r"Navigat|G4Box|G4Tubs|G4Voxel|G4Replica|G4Safety|G4LogicalVolume|G4VPhysicalVolume|"
        r"G4AffineTransform|G4Touchable|G4VSolid|G4Region|G4PVPlacement|aNavig|aTouchable",
    ),
    (
        "stepping and transport machinery",
        r"G4Stepping|G4Step|G4Track|G4Transportation|G4VParticleChange|G4Dynamic|G4VProcess|"
        r"G4ProcessManager|G4EventManager|G4StackManager|G4TrackStack|G4Allocator|"
        r"G4TrackingManager|G4ParticleDefinition|G4PropagatorInField|rotateUz|Hep3Vector|"
        r"pDynamicParticleAllocator|G4VSteppingVerbose",
    ),
    (
        "scoring (sensitive detectors, hits maps)",
        r"G4PSEnergyDeposit|G4MultiFunctional|G4MultiSensitive|G4VSensitiveDetector|G4SDManager|"
        r"G4THitsMap|G4VPrimitiveScorer|G4HCofThisEvent",
    ),
    ("random numbers", r"CLHEP::|MixMax|RandGauss|RandFlat|HepRandom"),
    ("maths library", r"__sincos|__ieee754|__sin_|__cos_|__log|__exp|__atan|__pow|__tan|sqrt"),
    ("thread-local storage (multi-threaded build)", r"__tls_get_addr"),
    ("Python interpreter", r"^_?Py|^PyObject|_PyEval|gc_collect|visit_|unicodekeys|sre_"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector", default="siw")
    ap.add_argument("--energy", type=float, default=8.0, help="GeV")
    ap.add_argument("--showers", type=int, default=60)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("error: perf is not installed (Debian: apt-get install linux-perf)")

    from twinforge.detector import load_detector
    from twinforge.showers.conditions import Conditions
    from twinforge.simulation.geant4 import Geant4Options, get_session

    session = get_session(load_detector(args.detector), Geant4Options())
    session.simulate(Conditions.make([1000.0], 11), 0)  # physics tables
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        perf = subprocess.Popen(
            ["perf", "record", "-e", "cpu-clock", "-F", "1000", "-p", str(os.getpid()),
             "-o", str(data)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
        session.simulate(Conditions.make(np.full(args.showers, args.energy * 1e3), 11), 1)
        cpu = np.asarray(session.last_timings.cpu)
        perf.send_signal(signal.SIGINT)
        perf.wait()
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--sort", "symbol", "--stdio"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    shares: dict[str, float] = {}
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        share, symbol = float(m.group(1)), m.group(2).strip()
        part = next((name for name, pattern in PARTS if re.search(pattern, symbol)), "other")
        shares[part] = shares.get(part, 0.0) + share
    result = {
        "detector": args.detector,
        "energy_GeV": args.energy,
        "showers": args.showers,
        "median_cpu_s_per_shower": float(np.median(cpu)),
        "ms_per_GeV": float(np.median(cpu)) * 1e3 / args.energy,
        "percent_of_samples": dict(sorted(shares.items(), key=lambda kv: -kv[1])),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
