"""One contract, run over every simulator twinforge ships (zuko's habit): declared parameters
and outputs, deterministic runs, files that round-trip, workers rebuilt from their options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinforge.simulation import registry
from twinforge.simulation.base import Simulator
from twinforge.space import ParameterSpace, SamplerConfig, sample_points

FODO = {
    "particle": "proton",
    "momentum": "2 GeV",
    "knobs": {"k1f": {"value": 0.3, "unit": "1/m^2"}, "k1d": {"value": -0.3, "unit": "1/m^2"}},
    "lattice": {
        "elements": {
            "qf": {"type": "Quadrupole", "length": 0.5, "k1": "k1f"},
            "d1": {"type": "Drift", "length": 4.5},
            "qd": {"type": "Quadrupole", "length": 0.5, "k1": "k1d"},
            "d2": {"type": "Drift", "length": 4.5},
        },
        "sequence": ["qf", "d1", "qd", "d2"],
    },
    "n_particles": 200,
}
EXAMPLES = Path(__file__).parents[2] / "examples"


def madng_options() -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((EXAMPLES / "madng-fodo.yaml").read_text())["simulator"]
    data.pop("name")
    data["template_file"] = str(EXAMPLES / "madng" / "fodo.mad")
    data["parameters"]["k1f"]["default"] = 0.3
    data["parameters"]["k1d"]["default"] = -0.3
    return data


# each shipped simulator with small options and a small space
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "synthetic-test": ({"detector": "tiny"}, {"energy": {"min": "1 GeV", "max": "8 GeV"}}),
    "geant4": ({"detector": "tiny"}, {"energy": {"min": "1 GeV", "max": "2 GeV"}}),
    "xsuite": (FODO, {"k1f": {"min": 0.25, "max": 0.35}, "k1d": {"min": -0.35, "max": -0.25}}),
    "command": (madng_options(), {"k1f": {"min": 0.25, "max": 0.35}}),
    "analytic": ({"function": "hartmann3", "noise": 0.1}, {"x3": 0.5}),
}


def test_every_installed_simulator_has_a_case() -> None:
    """A simulator added to pyproject.toml gets a contract case here."""
    assert set(registry.available()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_contract(name: str, tmp_path: Path) -> None:
    if name == "command":
        pytest.importorskip("pymadng", reason="MAD-NG ships in pymadng (pip install .[madng])")
    if name == "geant4":  # one Geant4 per process: keep this one out of the test process
        from twinforge.simulation.geant4 import call_in_subprocess

        call_in_subprocess(check_contract, name, tmp_path, timeout=300)
    else:
        check_contract(name, tmp_path)


def check_contract(name: str, tmp_path: Path) -> None:
    """The contract, for simulator ``name`` with its case's options and space."""
    options, space_data = CASES[name]
    sim: Simulator = registry.create(name, options)
    assert sim.name in registry.available()
    assert sim.summary
    params = sim.parameters()
    space = ParameterSpace.model_validate(space_data).resolve(params)
    points = sample_points(space, SamplerConfig(kind="sobol", seed=1), 3)
    assert list(points) == [p.name for p in params]  # in the declared order

    a = sim.run(points, seed=7, workdir=tmp_path / "a")
    b = sim.run(points, seed=7, workdir=tmp_path / "b")
    outputs = sim.outputs()
    assert [o.name for o in outputs] == list(a.outputs)
    for o in outputs:
        assert a.outputs[o.name].shape == (3, *o.shape), o.name
        np.testing.assert_array_equal(a.outputs[o.name], b.outputs[o.name])  # seeded

    code = sim.code()
    assert code["name"]
    assert code["version"]
    provenance = sim.provenance()
    json.dumps(provenance)
    assert provenance["simulator"] == sim.name

    path = tmp_path / f"job{sim.format.suffix}"
    job_prov = {**provenance, "job": "job-000000", "seed": 7}
    assert sim.format.write(path, sim, points, a, job_prov) == 3
    n, stored = sim.format.describe(path)
    assert (n, stored["job"], stored["seed"]) == (3, "job-000000", 7)
    for name, column in points.items():
        np.testing.assert_array_equal(sim.format.input_column(path, name), column)
    merged = tmp_path / f"merged{sim.format.suffix}"
    assert sim.format.merge([path, path], merged, {"campaign": "c"}) == 6

    rebuilt = registry.create(sim.name, json.loads(json.dumps(sim.worker_options())))
    assert [o.name for o in rebuilt.outputs()] == [o.name for o in outputs]
    again = rebuilt.run(points, seed=7, workdir=tmp_path / "c")
    for o in outputs:
        np.testing.assert_array_equal(again.outputs[o.name], a.outputs[o.name])
