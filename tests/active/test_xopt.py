"""Xopt both ways, with the real package: twinforge's generator inside Xopt, and Xopt's
generators driving a twinforge campaign."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xopt", reason="Xopt is an extra: pip install 'twinforge[xopt]'")

from gest_api.vocs import VOCS
from xopt import Evaluator, Xopt

from twinforge.active.xopt import TwinforgeXoptGenerator, xopt_generator
from twinforge.campaign import CampaignConfig, merge_campaign, run_campaign
from twinforge.catalog import Catalog
from twinforge.errors import ConfigError


def bowl(inputs: dict) -> dict:
    return {"y": (inputs["x1"] - 0.3) ** 2 + (inputs["x2"] + 0.2) ** 2, "c": inputs["x1"]}


def test_twinforge_generator_runs_inside_xopt() -> None:
    vocs = VOCS(variables={"x1": [-1, 1], "x2": [-1, 1]}, objectives={"y": "MINIMIZE"},
                constraints={"c": ["LESS_THAN", 0.1]})  # fmt: skip
    gen = TwinforgeXoptGenerator(vocs=vocs, config={"initial_points": 4, "candidates": 512})
    X = Xopt(generator=gen, evaluator=Evaluator(function=bowl, max_workers=2))
    for _ in range(8):
        X.step()
    assert len(X.data) == 16
    feasible = X.data[X.data["c"] < 0.1]
    # the constrained minimum is at (0.1, -0.2), y = 0.04
    assert feasible["y"].min() < 0.08
    assert X.generator.surrogate is not None
    assert X.generator.surrogate.n_train == 16


def test_xopt_generators_are_gest_api_generators() -> None:
    vocs = VOCS(variables={"x1": [-1, 1], "x2": [-1, 1]}, objectives={"y": "MINIMIZE"})
    gen = xopt_generator("expected_improvement", vocs)
    start = [{"x1": a, "x2": b} for a, b in np.random.default_rng(0).uniform(-1, 1, (5, 2))]
    gen.ingest([{**p, **bowl(p)} for p in start])
    (point,) = gen.suggest(1)
    assert -1 <= point["x1"] <= 1
    with pytest.raises(ConfigError, match="unknown Xopt generator 'simplex'"):
        xopt_generator("simplex", vocs)
    with pytest.raises(ConfigError, match="Xopt generator latin_hypercube"):
        xopt_generator("latin_hypercube", vocs)  # it explores only


def test_xopt_generator_drives_a_campaign(tmp_path: Path) -> None:
    cfg = CampaignConfig.model_validate({
        "name": "xo",
        "simulator": {"name": "analytic", "function": "branin"},
        "sampler": {"kind": "xopt", "generator": "expected_improvement",
                    "objectives": {"y": "minimize"}, "initial_points": 4},
        "total_points": 10,
        "points_per_job": 1,
        "executor": {"kind": "local"},
        "output_dir": str(tmp_path / "{name}"),
    })  # fmt: skip
    with Catalog.open(tmp_path / "c.sqlite") as cat:
        report = run_campaign(cfg, cat)
        assert report.complete
        assert report.stopped == "budget reached"
        jobs = cat.jobs(report.campaign_id)
        assert [j.parameters["proposed_by"] for j in jobs] == ["sobol"] * 4 + [
            "xopt:expected_improvement"] * 6  # fmt: skip
        merged = merge_campaign(cat, cfg)
        assert merged.n_events == 10


def test_torch_default_dtype_is_left_alone() -> None:
    """Xopt's Bayesian generators set torch's global default dtype to float64 on import;
    twinforge puts it back (float32 models elsewhere in the process depend on it)."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from gest_api.vocs import VOCS\n"
        "from twinforge.active.xopt import xopt_generator\n"
        "vocs = VOCS(variables={'x': [0, 1]}, objectives={'y': 'MINIMIZE'})\n"
        "xopt_generator('expected_improvement', vocs)\n"
        "print(torch.get_default_dtype())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "torch.float32"
