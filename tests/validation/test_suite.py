"""The suite end to end: schema, noise floor, per-energy bins, bad input, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinforge.config import validate_config
from twinforge.detector import Readout, load_detector
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.showers import Conditions, write_showers
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers
from twinforge.validation import (
    ClassifierConfig,
    ValidationConfig,
    ValidationInputError,
    run_validation,
    validate_files,
)

TINY = load_detector("tiny")
READOUT = TINY.binning()
FAST_CLS = ClassifierConfig(hidden=[32, 32], epochs=3, batch_size=100, lr=1e-3, threads=1)
FAST = ValidationConfig(
    classifier=FAST_CLS,
    high_classifier=FAST_CLS,
    classifier_seeds=[0],
    energy_bins=3,
)
NO_CLS = FAST.model_copy(update={"metrics": ["separation", "fpd", "kpd"]})
METRIC_KEYS = {"separation", "classifier_low", "classifier_high", "fpd", "kpd"}


def _showers(n: int, seed: int, lo: float = 1000.0, hi: float = 64000.0):
    cond = SyntheticConfig(
        detector="tiny", n_events=n, seed=seed, energy_min=lo, energy_max=hi
    ).conditions()
    return synthetic_showers(TINY, cond, seed), cond.energy


@pytest.fixture(scope="module")
def samples():
    return _showers(1500, 1), _showers(1500, 2)


@pytest.fixture(scope="module")
def same_result(samples):
    (s1, e1), (s2, e2) = samples
    return run_validation(s1, e1, s2, e2, READOUT, FAST)


def test_schema(same_result) -> None:
    m = json.loads(same_result.to_json())  # strict JSON: no NaN
    assert m["format"] == "twinforge-validation"
    assert m["format_version"] == 2
    assert m["reference"] == {"path": None, "n_showers": 1500, "provenance": {}}
    assert m["readout"]["n_layers"] == 6
    assert m["readout"]["n_voxels"] == 96
    assert m["readout"]["calochallenge_dataset"] is None
    assert m["config"]["energy_bins"] == 3
    assert set(m["overall"]) == METRIC_KEYS
    sep = m["overall"]["separation"]
    for key in ("layer_energy", "centre_x", "centre_y", "width_x", "width_y", "sparsity"):
        assert len(sep[key]) == 6
    assert set(sep["summary"]) >= {"e_ratio", "layer_energy", "voxel_spectrum", "radial"}
    low = m["overall"]["classifier_low"]
    for key in ("auc", "auc_min", "auc_max", "jsd", "accuracy", "n_train", "n_test", "budget"):
        assert key in low
    assert low["budget"] == "challenge (custom)"
    assert low["comparable"] is False
    assert [s["seed"] for s in low["seeds"]] == [0]
    assert low["seeds"][0]["epochs_run"] <= 3
    protocol = m["protocol"]
    assert protocol["comparable"] is False
    assert protocol["n_high_level_features"] == 2 + 4 * 6 + 4 * 6  # tiny: 6 layers in alpha
    assert protocol["threshold_mev"] == 0.0
    assert set(m["overall"]["fpd"]) == {"value", "error"}
    assert len(m["per_energy"]) == 3
    entry = m["per_energy"][0]
    assert entry["energy_range_mev"][0] == pytest.approx(min(same_result.reference.energy))
    assert (
        entry["n_reference"] + m["per_energy"][1]["n_reference"] + m["per_energy"][2]["n_reference"]
        == 1500
    )
    assert set(entry["metrics"]) == METRIC_KEYS
    floor = m["noise_floor"]
    assert floor["n_half"] == 750
    assert floor["same_size"] is False  # halves of 1500 against 1500 generated
    assert floor["method"] == "two random halves of the reference"
    assert set(floor["overall"]) == METRIC_KEYS
    assert len(floor["per_energy"]) == 3
    assert {"observables", "classifier_low", "fpd", "noise_floor", "total"} <= set(m["timing_s"])
    assert isinstance(m["skipped"], list)
    assert isinstance(m["warnings"], list)


def test_same_distribution_looks_perfect(same_result) -> None:
    overall = same_result.metrics["overall"]
    summary = overall["separation"]["summary"]
    assert all(v < 0.08 for v in summary.values()), summary
    assert abs(overall["classifier_low"]["auc"] - 0.5) < 0.1
    assert abs(overall["classifier_high"]["auc"] - 0.5) < 0.1
    floor = same_result.metrics["noise_floor"]["overall"]
    assert abs(floor["classifier_low"]["auc"] - 0.5) < 0.1
    # the generated sample is as good as the reference's own halves
    assert overall["fpd"]["value"] < 3 * floor["fpd"]["value"] + 0.01
    # per-energy classifier scores come from the one overall training
    per_bin = same_result.metrics["per_energy"][0]["metrics"]["classifier_low"]
    assert per_bin["n_train"] == overall["classifier_low"]["n_train"]
    assert per_bin["n_test"] < overall["classifier_low"]["n_test"]
    assert "classifier_low" in same_result.classifiers
    assert "noise floor/classifier_low" in same_result.classifiers


def test_different_distribution_is_detected(samples) -> None:
    (s1, e1), (s2, e2) = samples
    # voxels / E_inc are small numbers (no factor 100): the network needs more than 3 epochs
    trained = FAST_CLS.model_copy(update={"epochs": 40, "lr": 3e-3})
    config = FAST.model_copy(
        update={"noise_floor": False, "classifier": trained, "high_classifier": trained}
    )
    result = run_validation(s1, e1, 1.3 * s2, e2, READOUT, config)
    overall = result.metrics["overall"]
    assert overall["separation"]["e_ratio"] > 0.5
    assert overall["classifier_low"]["auc"] > 0.9
    assert result.metrics["noise_floor"] is None


def test_progress_messages(samples) -> None:
    (s1, e1), (s2, e2) = samples
    messages: list[str] = []
    run_validation(
        s1[:300], e1[:300], s2[:300], e2[:300], READOUT, NO_CLS, progress=messages.append
    )
    assert "computing observables" in messages
    assert any("FPD" in msg for msg in messages)
    assert messages[-1].startswith("validation done")


def test_too_few_showers_for_a_classifier_is_an_error(samples) -> None:
    (s1, e1), (s2, e2) = samples
    with pytest.raises(ValidationInputError, match="needs at least 250 of each sample"):
        run_validation(s1[:200], e1[:200], s2[:200], e2[:200], READOUT, FAST)


def test_too_few_showers_skips_other_metrics_with_reasons(samples) -> None:
    (s1, e1), (s2, e2) = samples
    result = run_validation(s1[:60], e1[:60], s2[:60], e2[:60], READOUT, NO_CLS)
    m = result.metrics
    assert set(m["overall"]) == {"separation", "kpd"}
    reasons = {(s["metric"], s["scope"]): s["reason"] for s in m["skipped"]}
    assert "at least 100 showers" in reasons[("fpd", "overall")]
    assert "at least 50 showers" in reasons[("kpd", "noise floor")]
    assert any(scope.startswith("noise floor, E ") for _, scope in reasons)
    json.loads(result.to_json())


def test_noise_floor_too_small_for_the_classifier_is_skipped(samples) -> None:
    (s1, e1), (s2, e2) = samples
    m = run_validation(s1[:400], e1[:400], s2[:400], e2[:400], READOUT, FAST).metrics
    assert "classifier_low" in m["overall"]
    reasons = {(s["metric"], s["scope"]): s["reason"] for s in m["skipped"]}
    assert "at least 250 showers" in reasons[("classifier_low", "noise floor")]


def test_different_energy_ranges_are_an_error() -> None:
    ref = _showers(600, 3, 1000.0, 10_000.0)
    gen = _showers(600, 4, 5000.0, 50_000.0)
    config = NO_CLS.model_copy(update={"energy_bins": 2, "noise_floor": False})
    with pytest.raises(ValidationInputError, match=r"incident-energy ranges differ: reference"):
        run_validation(*ref, *gen, READOUT, config)


def test_threshold_is_applied_to_both_samples(samples) -> None:
    (s1, e1), (s2, e2) = samples
    threshold = float(np.quantile(s1[s1 > 0], 0.3))
    config = NO_CLS.model_copy(update={"noise_floor": False, "energy_bins": 0})
    cut = run_validation(s1, e1, s2, e2, READOUT, config.model_copy(
        update={"threshold_mev": threshold}))  # fmt: skip
    s1z, s2z = np.where(s1 < threshold, 0, s1), np.where(s2 < threshold, 0, s2)
    pre = run_validation(s1z, e1, s2z, e2, READOUT, config)
    assert cut.metrics["overall"]["fpd"] == pre.metrics["overall"]["fpd"]
    assert cut.metrics["protocol"]["threshold_mev"] == threshold
    # the recorded threshold of the reference is the default
    rec = run_validation(s1, e1, s2, e2, READOUT, config, recorded_threshold=threshold)
    assert rec.metrics["protocol"]["threshold_source"] == "the reference file's readout threshold"
    assert rec.metrics["overall"]["fpd"] == pre.metrics["overall"]["fpd"]
    assert np.all(s1[s1 > 0].min() < threshold)  # the inputs were not modified


def test_seeds_give_mean_and_spread(samples) -> None:
    (s1, e1), (s2, e2) = samples
    config = FAST.model_copy(
        update={"classifier_seeds": [0, 1, 2], "noise_floor": False, "energy_bins": 2,
                "metrics": ["classifier_low"]}
    )  # fmt: skip
    low = run_validation(s1, e1, s2, e2, READOUT, config).metrics["overall"]["classifier_low"]
    aucs = [s["auc"] for s in low["seeds"]]
    assert [s["seed"] for s in low["seeds"]] == [0, 1, 2]
    assert low["auc"] == pytest.approx(np.mean(aucs))
    assert (low["auc_min"], low["auc_max"]) == (min(aucs), max(aucs))
    assert len(set(aucs)) > 1  # seeds differ


def test_second_reference_floor_and_cache(samples, tmp_path) -> None:
    from twinforge.validation.suite import FloorReference

    (s1, e1), (s2, e2) = samples
    s3, e3 = _showers(1500, 5)
    config = FAST.model_copy(update={"cache_dir": str(tmp_path), "energy_bins": 2})
    floor = FloorReference(s3, e3, {"path": "second.h5"})
    first = run_validation(s1, e1, s2[:1000], e2[:1000], READOUT, config, floor_reference=floor)
    nf = first.metrics["noise_floor"]
    assert nf["method"] == "the reference against a second, independent reference"
    assert nf["n_half"] == 1000
    assert nf["same_size"] is True
    assert nf["floor_reference"]["path"] == "second.h5"
    assert nf["cached"] is False
    assert len(list(tmp_path.glob("noise-floor-*.json"))) == 1
    messages: list[str] = []
    again = run_validation(s1, e1, s2[:1000], e2[:1000], READOUT, config, floor_reference=floor,
                           progress=messages.append)  # fmt: skip
    assert again.metrics["noise_floor"]["cached"] is True
    assert again.metrics["noise_floor"]["overall"] == nf["overall"]
    assert any("from the cache" in msg for msg in messages)
    # another reference is another key
    run_validation(s2, e2, s1[:1000], e1[:1000], READOUT, config, floor_reference=floor)
    assert len(list(tmp_path.glob("noise-floor-*.json"))) == 2
    # an entry that is not a floor is ignored, with a warning, and replaced
    for entry in tmp_path.glob("noise-floor-*.json"):
        entry.write_text('{"noise_floor": {"method": 3}}')
    third = run_validation(s1, e1, s2[:1000], e2[:1000], READOUT, config, floor_reference=floor)
    assert third.metrics["noise_floor"]["cached"] is False
    assert any("unusable cache entry" in w for w in third.metrics["warnings"])


def test_all_zero_showers_are_handled(samples) -> None:
    (s1, e1), (s2, e2) = samples
    gen = s2[:400].copy()
    gen[:100] = 0.0
    config = NO_CLS.model_copy(update={"energy_bins": 0})
    result = run_validation(s1[:400], e1[:400], gen, e2[:400], READOUT, config)
    m = json.loads(result.to_json())
    assert any("100 of 400 generated showers are empty" in w for w in m["warnings"])
    assert m["per_energy"] == []
    assert m["overall"]["separation"]["e_ratio"] > 0.1
    assert np.isfinite(m["overall"]["fpd"]["value"])
    zero = run_validation(s1[:400], e1[:400], 0 * gen, e2[:400], READOUT, config)
    assert zero.metrics["overall"]["separation"]["centre_x"] == [None] * 6


def test_nan_and_shape_errors(samples) -> None:
    (s1, e1), _ = samples
    bad = s1[:50].copy()
    bad[3, 7] = np.nan
    with pytest.raises(ValidationInputError, match="generated: non-finite voxel energies"):
        run_validation(s1[:50], e1[:50], bad, e1[:50], READOUT, NO_CLS)
    with pytest.raises(TwinforgeError, match="reference showers have shape"):
        run_validation(s1[:50, :-1], e1[:50], s1[:50], e1[:50], READOUT, NO_CLS)
    energy = e1[:50].copy()
    energy[0] = np.nan
    with pytest.raises(TwinforgeError, match="incident energies"):
        run_validation(s1[:50], energy, s1[:50], e1[:50], READOUT, NO_CLS)


def test_config() -> None:
    config = validate_config(ValidationConfig, {"energy_bins": [1000, 4000, 16000]})
    assert config.metrics == ["separation", "classifier_low", "classifier_high", "fpd", "kpd"]
    with pytest.raises(ConfigError, match="must increase"):
        validate_config(ValidationConfig, {"energy_bins": [1000, 500]})
    with pytest.raises(ConfigError, match="metrics"):
        validate_config(ValidationConfig, {"metrics": ["auc"]})
    with pytest.raises(ConfigError, match="unknown key 'noise'"):
        validate_config(ValidationConfig, {"noise": True})
    dump = ValidationConfig().model_dump(mode="json")
    assert dump["kind"] == "validation"
    assert dump["classifier"]["hidden"] == [2048, 2048, 2048]
    assert dump["classifier"]["budget"] == "challenge"
    assert dump["classifier_seeds"] == [0, 1, 2]


def test_explicit_energy_bins(samples) -> None:
    (s1, e1), (s2, e2) = samples
    config = NO_CLS.model_copy(
        update={"energy_bins": [1000.0, 8000.0, 64000.0], "noise_floor": False}
    )
    m = run_validation(s1[:500], e1[:500], s2[:500], e2[:500], READOUT, config).metrics
    assert [e["label"] for e in m["per_energy"]] == ["E 1-8 GeV", "E 8-64 GeV"]
    assert [e["energy_range_mev"] for e in m["per_energy"]] == [[1000.0, 8000.0], [8000.0, 64000.0]]


def test_irregular_dataset1_readout(calochallenge_dir) -> None:
    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_photons.xml")
    rng = np.random.default_rng(0)
    n = 400
    energy = 2.0 ** rng.integers(8, 23, size=2 * n)
    scale = energy[:, None] / readout.n_voxels
    showers = (rng.exponential(1.0, size=(2 * n, readout.n_voxels)) * scale).astype(np.float32)
    showers[rng.random(showers.shape) < 0.6] = 0.0
    result = run_validation(showers[:n], energy[:n], showers[n:], energy[n:], readout, NO_CLS)
    m = json.loads(result.to_json())
    assert m["readout"]["calochallenge_dataset"] == "1-photons"
    sep = m["overall"]["separation"]
    assert len(sep["layer_energy"]) == 24
    n_vox = readout.voxels_per_layer
    assert all(sep["layer_energy"][i] is None for i in np.flatnonzero(n_vox == 0))
    assert sep["layer_energy"][0] is not None
    assert sep["centre_x"][0] is None
    assert sep["centre_x"][1] is not None
    assert sep["summary"]["e_ratio"] < 0.2


# --------------------------------------------------------------------------- files
def _write(path: Path, readout: Readout, showers: np.ndarray, energy: np.ndarray) -> Path:
    return write_showers(
        path, readout, Conditions.make(energy, 11), showers, {"simulator": "test", "seed": 1}
    )


def test_validate_files(tmp_path: Path, samples) -> None:
    (s1, e1), (s2, e2) = samples
    ref = _write(tmp_path / "ref.h5", READOUT, s1[:300], e1[:300])
    gen = _write(tmp_path / "gen.h5", READOUT, s2[:300], e2[:300])
    result = validate_files(ref, gen, NO_CLS)
    m = result.metrics
    assert m["reference"]["path"] == str(ref)
    assert m["generated"]["path"] == str(gen)
    assert m["reference"]["n_showers"] == 300
    assert m["reference"]["provenance"]["simulator"] == "test"
    assert "fpd" in m["overall"]


def test_validate_files_with_different_binnings(tmp_path: Path, samples) -> None:
    (s1, e1), _ = samples
    other = Readout.uniform(6, [0.0, 5.0, 10.0, 20.0, 50.0], 4)  # same voxel count, other edges
    ref = _write(tmp_path / "reference.h5", READOUT, s1[:50], e1[:50])
    gen = _write(tmp_path / "generated.h5", other, s1[:50], e1[:50])
    with pytest.raises(TwinforgeError, match="different binnings") as info:
        validate_files(ref, gen, NO_CLS)
    assert str(ref) in str(info.value)
    assert str(gen) in str(info.value)
    assert "r edges" in str(info.value)
    coarse = Readout.uniform(3, [0.0, 10.0], 4)
    gen2 = _write(tmp_path / "coarse.h5", coarse, s1[:50, :12], e1[:50])
    with pytest.raises(TwinforgeError, match="different binnings") as info:
        validate_files(ref, gen2, NO_CLS)
    assert str(gen2) in str(info.value)
