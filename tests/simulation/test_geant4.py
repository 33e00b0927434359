"""Geant4 end to end, each run in its own subprocess (one run manager per process).

The module-scoped fixtures run a few small simulations once; the tests check their results.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinforge.detector import DetectorConfig, ReadoutSpec, SamplingStack, load_detector
from twinforge.errors import SimulationError
from twinforge.showers.conditions import Conditions
from twinforge.simulation.calorimeter import ShowerSimulator as Simulator
from twinforge.simulation.geant4 import (
    DATA_FREE_EM,
    Geant4Options,
    Geant4Simulator,
    call_in_subprocess,
    get_session,
    simulate_in_subprocess,
)
from twinforge.simulation.geant4.output import G4_LOGGER
from twinforge.simulation.root import read_root_ntuple, read_root_showers

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("geant4_pybind") is None, reason="geant4-pybind is not installed"
)

TWO_ME = 1.021998  # MeV, 2 electron masses: what an escaping positron does not give back
E_TINY = 1000.0


# ---------------------------------------------------------------------- subprocess bodies
def _tiny_run(root_path: str) -> dict[str, Any]:
    """Everything checked on the 'tiny' detector, in one Geant4 process."""
    records: list[tuple[int, str]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelno, record.getMessage()))

    g4_log = logging.getLogger(G4_LOGGER)
    g4_log.addHandler(Collect())
    g4_log.setLevel(logging.DEBUG)
    g4_log.propagate = False
    stdout = io.StringIO()
    out: dict[str, Any] = {}
    with contextlib.redirect_stdout(stdout):
        session = get_session(load_detector("tiny"))
        electrons = Conditions.make(np.full(6, E_TINY), 11)
        out["a"] = session.simulate(electrons, 1)
        out["a_totals"] = session.last_totals
        out["b"] = session.simulate(electrons, 1)
        out["c"] = session.simulate(electrons, 2)
        out["head"] = session.simulate(electrons[np.arange(2)], 1)
        out["steps"] = session.simulate(electrons, 1, scoring="steps")
        mixed = Conditions.make(
            [1500.0, 1500.0, 1500.0], [22, -11, 11], theta=[0.0, 0.0, 0.3], phi=[0.0, 0.0, 0.8]
        )
        out["mixed_conditions"] = mixed
        out["mixed"] = session.simulate(mixed, 3, root_path=root_path)
        out["mixed_totals"] = session.last_totals
        errors = {}
        for name, call in {
            "hadron": lambda: session.simulate(Conditions.make([E_TINY], 211), 0),
            "theta": lambda: session.simulate(Conditions.make([E_TINY], 11, theta=2.0), 0),
            "seed": lambda: session.simulate(electrons, -1),
            "other_detector": lambda: get_session(load_detector("siw")),
        }.items():
            try:
                call()
            except SimulationError as exc:
                errors[name] = str(exc)
        out["errors"] = errors
        out["process_list"] = session.apply_command("/process/list")
        out["processes"] = {p: session.process_names(p) for p in ("gamma", "e-", "e+")}
        out["couples"] = session.apply_command("/run/dumpCouples")
        out["provenance"] = session.provenance()
    out["stdout"] = stdout.getvalue()
    out["g4_records"] = records
    return out


def _pbwo4_run(n: int, energy: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Mean layer profiles and recorded / deposited fractions of e- and gamma in PbWO4."""
    session = get_session(load_detector("pbwo4"))
    out = {}
    for pdg in (11, 22):
        showers = session.simulate(Conditions.make(np.full(n, energy), pdg), 11)
        layers = session.readout.layer_energies(showers)
        out[pdg] = (layers, session.last_totals.deposited)
    return out


def _siw_run() -> dict[str, Any]:
    session = get_session(load_detector("siw"))
    out = {}
    for energy, n, seed in ((1000.0, 20, 5), (4000.0, 10, 6)):
        showers = session.simulate(Conditions.make(np.full(n, energy), 11), seed)
        out[energy] = (showers, session.last_totals)
    return out


def _per_layer_run(detector: DetectorConfig, entry: tuple[float, float]) -> dict[str, Any]:
    """Voxel volumes and step positions on a per-layer readout (empty layers, 1 alpha bin)."""
    session = get_session(detector, Geant4Options(entry=entry))
    conditions = Conditions.make([1000.0, 1000.0], 11)
    voxels = session.simulate(conditions, 8)
    totals = session.last_totals
    steps = session.simulate(conditions, 8, scoring="steps")
    return {"voxels": voxels, "steps": steps, "totals": totals}


def _replica_run(detector: DetectorConfig, entry: tuple[float, float]) -> dict[str, Any]:
    """Replica layout (equal-width r bins): voxel volumes against step positions."""
    from twinforge.simulation.geant4.geometry import replica_layout

    session = get_session(detector, Geant4Options(entry=entry))
    conditions = Conditions.make([1000.0, 1000.0, 1000.0], [11, 22, -11])
    voxels = session.simulate(conditions, 4)
    totals = session.last_totals
    return {
        "layout": replica_layout(session.readout),
        "voxels": voxels,
        "again": session.simulate(conditions, 4),
        "steps": session.simulate(conditions, 4, scoring="steps"),
        "totals": totals,
    }


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root_path = tmp_path_factory.mktemp("geant4") / "tiny.root"
    result = call_in_subprocess(_tiny_run, str(root_path))
    result["root_path"] = root_path
    return result


@pytest.fixture(scope="module")
def pbwo4() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return call_in_subprocess(_pbwo4_run, 40, 2000.0)


@pytest.fixture(scope="module")
def siw() -> dict[str, Any]:
    return call_in_subprocess(_siw_run)


# ---------------------------------------------------------------------- physics list
def test_data_free_processes(tiny: dict[str, Any]) -> None:
    assert tiny["processes"] == {
        "gamma": ["Transportation", "phot", "compt", "conv"],
        "e-": ["Transportation", "msc", "eIoni", "eBrem"],
        "e+": ["Transportation", "msc", "eIoni", "eBrem", "annihil"],
    }
    listed = set(re.findall(r"[\w+-]+", tiny["process_list"]))
    assert {"Transportation", "phot", "compt", "conv", "msc", "eIoni", "eBrem", "annihil"} <= listed
    assert "Rayl" not in listed
    assert tiny["provenance"]["physics"] == DATA_FREE_EM


def test_production_cut_is_0_7_mm(tiny: dict[str, Any]) -> None:
    cuts = [line for line in tiny["couples"].splitlines() if "Range cuts" in line]
    assert len(cuts) == 3  # vacuum, W, Si
    assert all(line.split().count("700") == 4 for line in cuts)


def test_provenance(tiny: dict[str, Any]) -> None:
    prov = tiny["provenance"]
    assert prov["simulator"] == "geant4"
    assert "11" in prov["simulator_version"]
    assert prov["geant4_pybind"] == "0.1.3"
    assert prov["production_cut_mm"] == 0.7
    assert prov["geometry"]["absorber"] == "G4_W"
    assert prov["geometry"]["n_layers"] == 12


def test_geant4_output_goes_to_logging(tiny: dict[str, Any]) -> None:
    assert tiny["stdout"] == ""
    assert any("Geant4 version" in message for _, message in tiny["g4_records"])


# ---------------------------------------------------------------------- showers
def test_shapes_and_threshold(tiny: dict[str, Any]) -> None:
    showers = tiny["a"]
    assert showers.shape == (6, 96)
    assert showers.dtype == np.float32
    assert np.all(showers >= 0)
    threshold = load_detector("tiny").readout.threshold
    assert np.all((showers == 0) | (showers >= threshold))
    assert np.all(showers.sum(axis=1) > 0)


def test_same_seed_same_showers(tiny: dict[str, Any]) -> None:
    np.testing.assert_array_equal(tiny["a"], tiny["b"])
    assert not np.array_equal(tiny["a"], tiny["c"])
    # shower i depends on (seed, i) only, not on the batch around it
    np.testing.assert_array_equal(tiny["head"], tiny["a"][:2])


def test_step_scoring_agrees_with_voxel_volumes(tiny: dict[str, Any]) -> None:
    np.testing.assert_allclose(tiny["steps"], tiny["a"], rtol=1e-5, atol=1e-6)


def test_oblique_and_mixed_particles(tiny: dict[str, Any]) -> None:
    showers, totals = tiny["mixed"], tiny["mixed_totals"]
    recorded = showers.sum(axis=1)
    assert np.all(recorded > 0)
    # the oblique shower (index 2) is binned around its own axis: most of its energy is kept
    assert recorded[2] > 0.7 * totals.sensitive[2]


def test_energy_bookkeeping(tiny: dict[str, Any], siw: dict[str, Any]) -> None:
    cases = [(tiny["a_totals"], np.full(6, E_TINY), tiny["a"])]
    mixed = tiny["mixed_conditions"]
    cases.append((tiny["mixed_totals"], mixed.energy, tiny["mixed"]))
    cases += [(totals, np.full(len(totals), e), s) for e, (s, totals) in siw.items()]
    for totals, energy, showers in cases:
        assert np.all(totals.deposited >= totals.sensitive)
        assert np.all(totals.sensitive >= showers.sum(axis=1) - 1e-3)
        missing = energy - (totals.deposited + totals.escaped)
        positron = np.zeros(len(energy), bool)
        if energy is mixed.energy:
            positron = mixed.pdg == -11
        # e+ bring 2 m_e of rest energy; an escaping e+ takes 2 m_e that is never given back
        missing[positron] += TWO_ME
        assert np.all(missing >= -1e-6)
        np.testing.assert_allclose(missing / TWO_ME, np.round(missing / TWO_ME), atol=1e-4)


def test_errors(tiny: dict[str, Any]) -> None:
    errors = tiny["errors"]
    assert "PDG id 211" in errors["hadron"]
    assert "data sets" in errors["hadron"]
    assert "theta" in errors["theta"]
    assert "seed" in errors["seed"]
    assert "one run manager per process" in errors["other_detector"]


def test_root_round_trip(tiny: dict[str, Any]) -> None:
    conditions, showers = read_root_showers(tiny["root_path"])
    np.testing.assert_array_equal(showers, tiny["mixed"])
    expected = tiny["mixed_conditions"]
    for name in ("energy", "pdg", "theta", "phi"):
        np.testing.assert_array_equal(getattr(conditions, name), getattr(expected, name))
    content = read_root_ntuple(tiny["root_path"])
    np.testing.assert_array_equal(content.deposited, tiny["mixed_totals"].deposited)
    np.testing.assert_array_equal(content.escaped, tiny["mixed_totals"].escaped)
    assert content.provenance == tiny["provenance"]


# ---------------------------------------------------------------------- physics checks
def _peak_depth(profile: np.ndarray, depth: np.ndarray) -> float:
    """Depth of the maximum of a gamma-function fit to a longitudinal profile."""
    from scipy.optimize import curve_fit

    def shape(t: np.ndarray, norm: float, a: float, b: float) -> np.ndarray:
        return norm * b * (b * t) ** (a - 1) * np.exp(-b * t)

    params, _ = curve_fit(shape, depth, profile / profile.sum(), p0=(1.0, 4.0, 0.5))
    return float((params[1] - 1) / params[2])


def test_pbwo4_shower_maximum(pbwo4: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    x0, ec, energy = 8.9, 9.3, 2000.0  # mm, MeV, MeV
    depth = load_detector("pbwo4").z_bin_edges().mean(axis=1) / x0
    peaks, means = {}, {}
    for pdg, (layers, deposited) in pbwo4.items():
        assert deposited.mean() > 0.98 * energy  # 25 X0 deep, 60 cm wide: contained
        assert layers.sum(axis=1).mean() > 0.97 * energy  # within the last r edge (300 mm)
        peaks[pdg] = _peak_depth(layers.mean(axis=0), depth)
        means[pdg] = float(((layers @ depth) / layers.sum(axis=1)).mean())
    expected = math.log(energy / ec) - 0.5
    assert abs(peaks[11] - expected) < 1.0, peaks
    assert peaks[22] > peaks[11]
    assert means[22] > means[11]


def test_siw_sampling_fraction_is_stable(siw: dict[str, Any]) -> None:
    fractions = {e: totals.sensitive.mean() / e for e, (_, totals) in siw.items()}
    assert 0.02 < fractions[1000.0] < 0.05
    assert fractions[4000.0] == pytest.approx(fractions[1000.0], rel=0.15)
    recorded = {e: showers.sum(axis=1).mean() / e for e, (showers, _) in siw.items()}
    assert recorded[4000.0] == pytest.approx(recorded[1000.0], rel=0.15)


def test_siw_radial_containment(siw: dict[str, Any]) -> None:
    readout = load_detector("siw").binning()
    showers, totals = siw[4000.0]
    radial = readout.to_grid(showers).sum(axis=(0, 1, 2))  # (n_r,)
    containment = np.cumsum(radial) / totals.sensitive.sum()
    assert np.all(np.diff(containment) > 0)
    assert containment[0] > 0.4
    assert 0.9 < containment[-1] <= 1.0
    edges = readout.layers[0].r_edges
    density = radial / (edges[1:] ** 2 - edges[:-1] ** 2)
    assert density[0] > density[2] > density[5] > density[8]


def test_per_layer_readout(calochallenge_dir: Path) -> None:
    """CaloChallenge dataset-1 pion binning: per-layer r edges, 1 or 10 alpha bins, empty
    layers; entry point off the detector axis."""
    detector = DetectorConfig(
        name="ds1-like",
        geometry=SamplingStack(
            absorber="G4_Pb", absorber_thickness=2.0, sensitive_thickness=0.5, n_layers=24
        ),
        transverse_size=4100.0,
        readout=ReadoutSpec(binning_xml=str(calochallenge_dir / "binning_dataset_1_pions.xml")),
    )
    result = call_in_subprocess(_per_layer_run, detector, (30.0, -20.0))
    voxels = result["voxels"]
    assert voxels.shape == (2, 533)
    np.testing.assert_allclose(result["steps"], voxels, rtol=1e-5, atol=1e-6)
    layers = detector.binning().layer_energies(voxels)
    assert np.all(layers[:, [4, 5, 11, 15, 23]] == 0)  # layers without voxels
    assert np.all(layers[:, [0, 3, 12, 14]] > 0)  # one alpha bin
    assert np.all(voxels.sum(axis=1) <= result["totals"].sensitive + 1e-3)


def test_replica_readout_agrees_with_step_positions() -> None:
    """Equal-width r bins are built as phi and rho replicas: same voxels as step positions."""
    detector = DetectorConfig(
        name="uniform-r",
        geometry=SamplingStack(
            absorber="G4_W", absorber_thickness=3.5, sensitive_thickness=0.3, n_layers=12
        ),
        transverse_size=300.0,
        readout=ReadoutSpec(r_edges=[0.0, 5.0, 10.0, 15.0, 20.0], n_alpha=4, layers_per_bin=2),
    )
    result = call_in_subprocess(_replica_run, detector, (10.0, -5.0))
    assert result["layout"]
    voxels = result["voxels"]
    assert np.all(voxels.sum(axis=1) > 0)
    np.testing.assert_array_equal(result["again"], voxels)
    np.testing.assert_allclose(result["steps"], voxels, rtol=1e-5, atol=1e-6)
    assert np.all(voxels.sum(axis=1) <= result["totals"].sensitive + 1e-3)
    grid = detector.binning().to_grid(voxels)
    assert np.all(grid.sum(axis=(0, 1, 3)) > 0)  # every alpha bin is hit


def _photon_along_an_alpha_edge() -> float:
    """One siw shower that once ran for over an hour: a photon at phi = 0 (an alpha edge of the
    16-bin readout) whose track lay in that replica boundary; returns its CPU seconds."""
    session = get_session(load_detector("siw"))
    conditions = Conditions.make([1715.3600876141215], 22, theta=0.3448625166036946)
    session.simulate(conditions, seed=424242, first_index=6815)
    return float(session.last_timings.cpu[0])


# ---------------------------------------------------------------------- runners
def test_a_track_on_a_replica_boundary_does_not_stall() -> None:
    """The gun is nudged off the readout's boundaries (session._ENTRY_NUDGE_MM): this shower
    takes about 0.3 s; on the boundary it crawled at Geant4's 1e-9 mm tolerance per step."""
    cpu = call_in_subprocess(_photon_along_an_alpha_edge, timeout=120)
    assert cpu < 10.0


def test_subprocess_reraises_simulation_errors() -> None:
    with pytest.raises(SimulationError, match="PDG id 2212"):
        simulate_in_subprocess(load_detector("tiny"), Conditions.make([E_TINY], 2212), 0)


def test_readout_must_fit_around_the_entry_point() -> None:
    options = Geant4Options(entry=(120.0, 0.0))  # tiny: 300 mm wide, r up to 40 mm
    with pytest.raises(SimulationError, match="does not fit"):
        simulate_in_subprocess(load_detector("tiny"), Conditions.make([E_TINY]), 0, options=options)


def test_subprocess_death_is_a_simulation_error() -> None:
    with pytest.raises(SimulationError, match="died"):
        call_in_subprocess(os._exit, 134)


def test_simulator_protocol_and_pickling() -> None:
    import pickle

    simulator = Geant4Simulator(load_detector("tiny"), isolated=True)
    assert isinstance(simulator, Simulator)
    assert pickle.loads(pickle.dumps(simulator)) == simulator
    prov = simulator.provenance()  # no run manager needed
    assert prov["physics"] == DATA_FREE_EM
    assert prov["production_cut_mm"] == 0.7


def test_importing_starts_no_geant4() -> None:
    code = (
        "import os, sys, twinforge.simulation, twinforge.simulation.geant4, "
        "twinforge.simulation.root; "
        "assert 'geant4_pybind' not in sys.modules; "
        "assert 'G4ENSDFSTATEDATA' not in os.environ"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("G4", "GEANT4"))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    from twinforge.simulation.geant4 import current_session

    assert current_session() is None  # the tests ran Geant4 in subprocesses only


def test_isolated_simulator_runs() -> None:
    simulator = Geant4Simulator(load_detector("tiny"), isolated=True)
    showers = simulator.simulate(Conditions.make([500.0, 500.0], 22), 4)
    assert showers.shape == (2, 96)
