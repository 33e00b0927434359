"""The gest-api generator: ids and pending points, failures, categories, acquisitions that
learn (nipv, variance) and that optimise (ei with a constraint, ucb)."""

from __future__ import annotations

import numpy as np
import pytest

from twinforge.active import SurrogateGenerator, select, space_to_vocs, vocs_to_space
from twinforge.errors import ConfigError
from twinforge.simulation import registry
from twinforge.space import ParameterSpace
from twinforge.surrogate import rmse

BRANIN = registry.create("analytic", {"function": "branin"})
SPACE = ParameterSpace.model_validate({}).resolve(BRANIN.parameters())


def evaluate(points: list[dict]) -> list[dict]:
    cols = {k: np.asarray([p[k] for p in points]) for k in SPACE.names}
    y = BRANIN.run(cols, seed=0).outputs["y"]
    return [{**p, "y": float(v), "c": float(p["x1"])} for p, v in zip(points, y, strict=True)]


def generator(objectives: dict, **config) -> SurrogateGenerator:
    vocs = space_to_vocs(SPACE, objectives, config.pop("constraints", None))
    return SurrogateGenerator(vocs, {"initial_points": 6, "candidates": 512, **config},
                              space=SPACE)  # fmt: skip


def test_ids_pending_and_failures() -> None:
    gen = generator({"y": "EXPLORE"})
    first = gen.suggest(4)
    assert [p["_id"] for p in first] == [0, 1, 2, 3]
    assert set(first[0]) == {"x1", "x2", "_id"}
    assert all(gen.proposed_by[i] == "sobol" for i in range(4))
    results = evaluate(first)
    results[1]["y"] = float("nan")  # a failed simulation
    gen.ingest(results)
    assert len(gen.rows) == 3
    assert len(gen.failed) == 1
    assert not gen.pending
    with pytest.raises(ValueError, match="_id 2 was not suggested"):
        gen.ingest(evaluate([first[2]]))  # ingested before
    gen.ingest(evaluate([{"x1": 0.0, "x2": 5.0}]))  # data from elsewhere: no _id
    assert len(gen.rows) == 4
    # after the initial design: the acquisition, conditioned on the pending points
    more = gen.suggest(3) + gen.suggest(3)
    assert {gen.proposed_by[p["_id"]] for p in more} == {"sobol", "nipv"}
    keys = {(round(p["x1"], 9), round(p["x2"], 9)) for p in more}
    assert len(keys) == 6  # pending points are never proposed twice
    assert len(gen.pending) == 6


@pytest.mark.parametrize("acquisition", ["nipv", "variance"])
def test_learning_beats_its_own_start(acquisition: str) -> None:
    gen = generator({"y": "EXPLORE"}, acquisition=acquisition)
    test = {k: np.asarray(v) for k, v in
            zip(SPACE.names, np.random.default_rng(5).uniform([-5, 0], [10, 15], (500, 2)).T,
                strict=True)}  # fmt: skip
    truth = BRANIN.run(test, seed=0).outputs["y"]
    errors = []
    for _ in range(10):
        gen.ingest(evaluate(gen.suggest(3)))
        model = gen.fit()
        if model is not None:
            errors.append(rmse(model.predict(test).mean["y"], truth))
    assert errors[-1] < 0.25 * errors[0], errors
    predicted = gen.predicted_error()
    assert predicted is not None
    assert 0.2 * errors[-1] < predicted["y"] < 5 * errors[-1]  # its own estimate is honest


def test_ei_with_a_constraint_and_ucb() -> None:
    # minimise Branin with x1 < 0: the constrained minimum is 0.398 at (-pi, 12.275)
    gen = generator({"y": "MINIMIZE"}, constraints={"c": ("LESS_THAN", 0.0)})
    assert gen.acquisition == "ei"
    for _ in range(12):
        gen.ingest(evaluate(gen.suggest(2)))
    feasible = [r for r in gen.rows if r["c"] < 0]
    assert min(r["y"] for r in feasible) < 2.0
    ucb = generator({"y": "MAXIMIZE"}, acquisition="ucb")
    for _ in range(8):
        ucb.ingest(evaluate(ucb.suggest(2)))
    assert max(r["y"] for r in ucb.rows) > 250  # Branin reaches 308 at (-5, 0)


def test_categorical_variables() -> None:
    space = ParameterSpace.model_validate(
        {"energy": {"min": 1.0, "max": 10.0}, "particle": {"values": ["e-", "gamma"]}}
    ).resolve(None)
    gen = SurrogateGenerator(space_to_vocs(space, {"r": "EXPLORE"}), {"initial_points": 4},
                             space=space)  # fmt: skip
    for _ in range(6):
        pts = gen.suggest(2)
        gen.ingest([{**p, "r": np.log(p["energy"]) + (p["particle"] == "gamma")} for p in pts])
    assert {r["particle"] for r in gen.rows} == {"e-", "gamma"}
    assert gen.fit().encoder.categorical == {1: 2}


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="at least one objective"):
        generator({})
    with pytest.raises(ConfigError, match="mix EXPLORE"):
        generator({"y": "EXPLORE", "c": "MINIMIZE"})
    with pytest.raises(ConfigError, match="takes no constraints"):
        generator({"y": "EXPLORE"}, constraints={"c": ("LESS_THAN", 0.0)})
    with pytest.raises(ValueError, match="needs the gp surrogate"):
        generator({"y": "MINIMIZE"}, surrogate="ensemble", acquisition="ei")
    gen = generator({"y": "EXPLORE"})
    gen.ingest(evaluate(gen.suggest(6)))
    model = gen.fit()
    with pytest.raises(ConfigError, match="unknown acquisition"):
        select(model, np.zeros((4, 2)), 1, acquisition="thompson")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs an objective"):
        select(model, np.zeros((4, 2)), 1, acquisition="ei")
    with pytest.raises(ConfigError, match="not fitted on output 'q'"):
        select(model, np.zeros((4, 2)), 1, outputs=["q"])


def test_vocs_round_trip() -> None:
    space = ParameterSpace.model_validate(
        {"k1": {"min": -1.0, "max": 1.0}, "p": {"values": ["e-", "gamma"]}, "c": 2.0}
    ).resolve(None)
    vocs = space_to_vocs(space, {"y": "MINIMIZE"}, {"g": ("GREATER_THAN", 1.0)})
    assert vocs.variable_names == ["k1", "p"]
    assert vocs.constant_names == ["c"]
    back = vocs_to_space(vocs)
    assert [(d.name, d.low, d.high, d.values) for d in back.dimensions] == [
        ("k1", -1.0, 1.0, None),
        ("p", 0.0, 0.0, ["e-", "gamma"]),
        ("c", 0.0, 0.0, [2.0]),
    ]
