"""The benchmark harness and the reduced-precision variants, on a small model of 'tiny'."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from tests.imports import assert_imports_none_of
from tests.inference.test_runtime import THRESHOLD, make_model_dir
from twinforge import bench as bench_module
from twinforge.bench import (
    SCHEMA,
    Timing,
    benchmark,
    harness,
    machine_info,
    register,
    resolve_detector,
    separation_power,
    summarize,
    time_calls,
    write_json,
    write_plot,
)
from twinforge.catalog import Catalog
from twinforge.detector import load_detector
from twinforge.errors import TwinforgeError
from twinforge.inference import Generator, export_onnx
from twinforge.inference.quantize import convert_float16, quantize_int8
from twinforge.models import Surrogate

FAST = Timing(warmup=1, min_repeats=2, max_repeats=3, budget_s=0.0)
ROW_KEYS = {
    "backend", "precision", "device", "batch", "threads", "block_size", "providers", "repeats",
    "median_ms_per_shower", "p16_ms_per_shower", "p84_ms_per_shower", "min_ms_per_shower",
    "max_ms_per_shower", "median_call_ms", "showers_per_s", "peak_rss_mib", "peak_rss_scope",
    "gpu_peak_mib", "speedup_vs_geant4", "speedup_vs_geant4_spectrum", "joules_per_shower",
}  # fmt: skip
FAKE_G4_S = 0.02  # s per shower of the fake Geant4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("bench") / "model", pdgs=(22, 11))


@pytest.fixture(scope="module")
def onnx_file(model_dir: Path) -> Path:
    return export_onnx(Surrogate.load(model_dir), model_dir.parent / "model.onnx")


@pytest.fixture
def fake_geant4(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Replace the Geant4 timing by a constant FAKE_G4_S s per shower; records the calls."""
    calls: list[tuple[Any, ...]] = []

    def fake(detector: Any, energy: float, pdg: int, n: int, **_: Any) -> dict[str, Any]:
        calls.append((detector.name, energy, pdg, n))
        return {
            "median_s_per_shower": FAKE_G4_S, "p16_s_per_shower": FAKE_G4_S,
            "p84_s_per_shower": FAKE_G4_S, "min_s_per_shower": FAKE_G4_S,
            "max_s_per_shower": FAKE_G4_S, "median_cpu_s_per_shower": FAKE_G4_S, "n": n,
            "energy_MeV": energy, "pdg": pdg, "detector": detector.name, "threads": 1,
            "physics": "fake", "simulator_version": "none", "peak_rss_mib": 1.0,
            "provenance": {},
        }  # fmt: skip

    def fake_spectrum(
        detector: Any, low: float, high: float, pdg: int, n: int, **_: Any
    ) -> dict[str, Any]:
        calls.append((detector.name, (low, high), pdg, n))
        return {
            "mean_s_per_shower": 2 * FAKE_G4_S, "mean_cpu_s_per_shower": 2 * FAKE_G4_S,
            "low_MeV": low, "high_MeV": high, "scale": "log", "n": n, "mean_energy_MeV": 1.0,
            "cpu_s_per_gev": 1.0, "pdg": pdg, "detector": detector.name,
        }  # fmt: skip

    monkeypatch.setattr(harness, "geant4_per_shower", fake)
    monkeypatch.setattr(harness, "geant4_spectrum", fake_spectrum)
    return calls


def test_importing_bench_imports_no_backend() -> None:
    assert_imports_none_of(["twinforge.bench"], ["torch", "onnxruntime", "lightning", "matplotlib"])


# ---------------------------------------------------------------------- timing helpers
def test_time_calls_repeats_and_budget() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    seen: list[int] = []

    def call(i: int) -> None:
        seen.append(i)
        now[0] += 1.0  # every call takes one second

    times = time_calls(call, warmup=2, min_repeats=3, max_repeats=100, budget_s=4.5, clock=clock)
    assert seen[:2] == [0, 1]  # warm-up, untimed
    assert times == [1.0] * 5  # 3 repeats at least, then until 4.5 s have passed
    seen.clear()
    times = time_calls(call, warmup=0, min_repeats=3, max_repeats=4, budget_s=1e9, clock=clock)
    assert len(times) == 4
    times = time_calls(call, warmup=0, min_repeats=3, max_repeats=1, budget_s=0.0, clock=clock)
    assert len(times) == 3  # min_repeats wins over max_repeats


def test_summarize() -> None:
    stats = summarize([0.010, 0.020, 0.030], batch=10)
    assert stats["repeats"] == 3
    assert stats["median_ms_per_shower"] == pytest.approx(2.0)
    assert stats["min_ms_per_shower"] == pytest.approx(1.0)
    assert stats["max_ms_per_shower"] == pytest.approx(3.0)
    assert stats["p16_ms_per_shower"] < 2.0 < stats["p84_ms_per_shower"]
    assert stats["median_call_ms"] == pytest.approx(20.0)
    assert stats["showers_per_s"] == pytest.approx(500.0)
    with pytest.raises(ValueError, match="no timings"):
        summarize([], 1)


def test_separation_power() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=1000)
    assert separation_power(a, a) == 0.0
    assert separation_power(a, a + 100.0) > 0.99  # all of b in the last bin of a
    assert separation_power(np.ones(3), np.ones(3)) == 0.0


def test_machine_info() -> None:
    info = machine_info()
    assert info["cpu_model"]
    assert info["usable_cpus"] >= 1
    assert info["logical_cpus"] >= info["usable_cpus"]
    assert info["versions"]["onnxruntime"]
    assert info["versions"]["torch"]
    assert "CPUExecutionProvider" in info["onnxruntime_providers"]
    json.dumps(info)


def test_resolve_detector(model_dir: Path, tmp_path: Path) -> None:
    from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file

    xml = Generator(model_dir).binning_xml
    assert resolve_detector(xml).name == "tiny"  # the preset with that binning
    assert resolve_detector(xml, detector="siw").name == "siw"  # explicit wins
    data = write_synthetic_file(SyntheticConfig(detector="pbwo4", n_events=2), tmp_path / "d.h5")
    assert resolve_detector(xml, {"training_files": [str(data)]}).name == "pbwo4"
    other = xml.replace('r_edges="0,', 'r_edges="0.5,')
    with pytest.raises(TwinforgeError, match="--detector"):
        resolve_detector(other, {"training_files": [str(tmp_path / "gone.h5")]})


# ---------------------------------------------------------------------- quantisation
def test_int8_and_float16_variants_run(onnx_file: Path, tmp_path: Path) -> None:
    base = Generator(onnx_file)
    energy = np.full(64, 10_000.0)
    noise = base.noise(64, 1)
    reference = base.generate(energy, 11, noise=noise)
    for precision, convert in (("int8", quantize_int8), ("float16", convert_float16)):
        path = convert(onnx_file, tmp_path / f"m.{precision}.onnx")
        proto = onnx.load(str(path))
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["precision"] == precision
        assert meta["noise_shape"] == "[4]"
        gen = Generator(path)
        assert [i.type for i in gen._session.get_inputs()][:2] == ["tensor(float)"] * 2
        showers = gen.generate(energy, 11, noise=noise)
        assert showers.shape == (64, 96)
        assert showers.dtype == np.float32
        assert (showers >= 0).all()
        assert ((showers == 0) | (showers >= THRESHOLD)).all()
        etot = showers.sum(axis=1) / reference.sum(axis=1)
        assert np.median(np.abs(etot - 1)) < 0.02  # close to float32 with the same noise
        assert path.stat().st_size < onnx_file.stat().st_size
    with pytest.raises(TwinforgeError, match="already exists"):
        quantize_int8(onnx_file, tmp_path / "m.int8.onnx")
    with pytest.raises(TwinforgeError, match="not found"):
        quantize_int8(tmp_path / "nope.onnx", tmp_path / "x.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model at all")
    with pytest.raises(TwinforgeError, match="not an ONNX model"):
        convert_float16(tmp_path / "bad.onnx", tmp_path / "y.onnx")
    assert not (tmp_path / "y.onnx").exists()
    with pytest.raises(TwinforgeError, match="no Conv node"):
        convert_float16(onnx_file, tmp_path / "z.onnx", ops=["Conv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.onnx", "m.float16.onnx", "m.int8.onnx"
    ]  # fmt: skip


# ---------------------------------------------------------------------- the benchmark
def test_benchmark_result(model_dir: Path, fake_geant4: list, tmp_path: Path) -> None:
    steps: list[tuple[str, int, int]] = []
    result = benchmark(
        model_dir,
        batch_sizes=(4, 1),
        precisions=("int8", "float16"),
        threads=1,
        timing=FAST,
        energy=5000.0,
        geant4_showers=3,
        fidelity_showers=50,
        isolate=False,
        progress=lambda *step: steps.append(step),
    )
    json.dumps(result)  # JSON-able as it is
    assert result["schema"] == SCHEMA
    assert result["schema_version"] == 1
    assert set(result) == {
        "schema", "schema_version", "date", "model", "conditions", "settings", "machine",
        "geant4", "results", "skipped", "fidelity",
    }  # fmt: skip
    assert result["model"]["family"] == "vae"
    assert result["model"]["n_voxels"] == 96
    assert result["conditions"] == {
        "energy_MeV": 5000.0, "pdg": 11, "theta": 0.0, "phi": 0.0, "spectrum_MeV": None,
    }  # fmt: skip
    assert fake_geant4 == [("tiny", 5000.0, 11, 3)]  # the model's detector, e- (it knows 11)
    assert result["settings"]["batch_sizes"] == [1, 4]
    assert result["settings"]["threads"] == 1
    configs = [(r["backend"], r["precision"], r["device"], r["batch"]) for r in result["results"]]
    assert configs == [
        ("torch", "float32", "cpu", 1), ("torch", "float32", "cpu", 4),
        ("onnx", "float32", "cpu", 1), ("onnx", "float32", "cpu", 4),
        ("onnx", "int8", "cpu", 1), ("onnx", "int8", "cpu", 4),
        ("onnx", "float16", "cpu", 1), ("onnx", "float16", "cpu", 4),
    ]  # fmt: skip
    for row in result["results"]:
        assert set(row) == ROW_KEYS
        assert row["threads"] == 1
        assert row["repeats"] >= 2
        assert 0 < row["min_ms_per_shower"] <= row["median_ms_per_shower"]
        assert row["median_ms_per_shower"] <= row["max_ms_per_shower"]
        assert row["peak_rss_mib"] > 10
        assert row["gpu_peak_mib"] is None
        expected = FAKE_G4_S * 1e3 / row["median_ms_per_shower"]
        assert row["speedup_vs_geant4"] == pytest.approx(expected)
        assert row["speedup_vs_geant4_spectrum"] is None
        # 1 thread at the default 5 W per busy core
        assert row["joules_per_shower"] == pytest.approx(row["median_ms_per_shower"] * 5e-3)
    assert result["settings"]["watts_per_core"] == 5.0
    assert result["geant4"]["joules_per_shower"] == pytest.approx(FAKE_G4_S * 5.0)
    assert result["geant4"]["spectrum"] is None
    skipped = {(s["backend"], s["precision"]) for s in result["skipped"]}
    assert skipped == {("torch", "int8"), ("torch", "float16")}
    same = result["fidelity"]["same_noise"]
    assert set(same) == {"onnx int8 cpu", "onnx float16 cpu"}
    assert same["onnx int8 cpu"]["against"] == "onnx float32 cpu"
    assert same["onnx int8 cpu"]["n"] == 50
    assert same["onnx float16 cpu"]["etot_rel_diff_median"] < 1e-3
    assert result["fidelity"]["reference"] is None
    assert steps[0][0].startswith("Geant4")
    assert steps[-1] == ("done", 9, 9)

    json_path = write_json(result, tmp_path / "bench.json")
    assert json.loads(json_path.read_text()) == result
    png = write_plot(result, tmp_path / "bench.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json", "bench.png"]

    with Catalog.open(tmp_path / "catalog.sqlite") as cat:
        model = cat.add_model("tiny-vae", architecture="vae", path=model_dir)
        record = register(cat, result, files=[json_path, png])
        assert record.model_id == model.id
        assert record.metrics["results"][0]["backend"] == "torch"
        assert record.metrics["geant4"]["median_s_per_shower"] == FAKE_G4_S
        assert record.provenance["kind"] == "benchmark"
        assert record.provenance["machine"]["cpu_model"] == result["machine"]["cpu_model"]
        assert len(cat.files(record.global_id)) == 2


def test_benchmark_onnx_file_isolated(onnx_file: Path) -> None:
    """An ONNX file: only the onnx backend; each configuration in a fresh process."""
    result = benchmark(
        onnx_file, batch_sizes=(2,), threads=1, timing=FAST, geant4_showers=0, isolate=True
    )
    assert result["geant4"] is None
    assert result["skipped"][0]["backend"] == "torch"
    assert "ONNX file" in result["skipped"][0]["reason"]
    (row,) = result["results"]
    assert (row["backend"], row["precision"], row["batch"]) == ("onnx", "float32", 2)
    assert row["peak_rss_scope"] == "process"
    assert row["peak_rss_mib"] > 10
    assert row["speedup_vs_geant4"] is None
    assert result["model"]["pdgs"] == [22, 11]
    assert result["conditions"]["pdg"] == 11


def test_benchmark_defaults_to_the_models_particle(onnx_file: Path, tmp_path: Path) -> None:
    photons = make_model_dir(tmp_path / "photons", pdgs=(22,))
    result = benchmark(
        photons, backends=["onnx"], batch_sizes=[1], timing=FAST, geant4_showers=0, isolate=False
    )
    assert result["conditions"]["pdg"] == 22


def test_benchmark_reference_without_a_suite(
    onnx_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--reference runs the validation suite per variant; here with a stand-in suite."""
    from twinforge.simulation.synthetic import SyntheticConfig, write_synthetic_file
    from twinforge.validation import suite

    reference = write_synthetic_file(
        SyntheticConfig(detector="tiny", n_events=30, seed=2), tmp_path / "ref.h5"
    )
    seen = []

    def fake_validation(ref, ref_e, gen, gen_e, readout, config=None, **_):
        seen.append((ref.shape, gen.shape, readout.n_voxels))
        return suite.ValidationResult({"auc": 0.5, "n": len(ref)}, None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(suite, "run_validation", fake_validation)
    result = benchmark(
        onnx_file, batch_sizes=[1], precisions=["int8"], timing=FAST, geant4_showers=0,
        reference=reference, isolate=False, fidelity_showers=10,
    )  # fmt: skip
    ref = result["fidelity"]["reference"]
    assert ref["n"] == 30
    assert set(ref["metrics"]) == {"onnx float32 cpu", "onnx int8 cpu"}
    assert ref["metrics"]["onnx int8 cpu"] == {"auc": 0.5, "n": 30}
    assert seen == [((30, 96), (30, 96), 96)] * 2


def test_benchmark_bad_input(model_dir: Path, onnx_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TwinforgeError, match="not found"):
        benchmark(tmp_path / "nope", geant4_showers=0)
    with pytest.raises(TwinforgeError, match="unknown backend 'jax'"):
        benchmark(model_dir, backends=["jax"], geant4_showers=0)
    with pytest.raises(TwinforgeError, match="unknown precision 'int4'"):
        benchmark(model_dir, precisions=["int4"], geant4_showers=0)
    with pytest.raises(TwinforgeError, match="unknown device 'tpu'"):
        benchmark(model_dir, devices=["tpu"], geant4_showers=0)
    with pytest.raises(TwinforgeError, match="batch sizes"):
        benchmark(model_dir, batch_sizes=[0, 10], geant4_showers=0)
    with pytest.raises(TwinforgeError, match="energy"):
        benchmark(model_dir, energy=-1.0, geant4_showers=0)
    with pytest.raises(TwinforgeError, match="watts per core must be > 0"):
        benchmark(model_dir, watts_per_core=float("nan"), geant4_showers=0)
    with pytest.raises(TwinforgeError, match="nothing to benchmark"):
        benchmark(onnx_file, backends=["torch"], geant4_showers=0)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00\x01 not onnx")
    with pytest.raises(TwinforgeError, match="not a loadable ONNX model"):
        benchmark(corrupt, geant4_showers=0)
    unknown = tmp_path / "unknown"
    shutil.copytree(model_dir, unknown)
    header = json.loads((unknown / "model.json").read_text())
    header["binning_xml"] = header["binning_xml"].replace('r_edges="0,', 'r_edges="0.5,')
    (unknown / "model.json").write_text(json.dumps(header))
    with pytest.raises(TwinforgeError, match="--detector"):
        benchmark(unknown, batch_sizes=[1], timing=FAST, geant4_showers=1, isolate=False)


def test_speed_up_over_a_spectrum(model_dir: Path, fake_geant4: list, tmp_path: Path) -> None:
    """With a spectrum, Geant4 is also timed over it, and each row gets its speed-up against
    Geant4's mean CPU time there; a bad spectrum is refused before anything runs."""
    result = benchmark(
        model_dir, batch_sizes=[2], backends=["onnx"], threads=1, timing=FAST, energy=5000.0,
        geant4_showers=3, spectrum=(1000.0, 64000.0), spectrum_showers=8, isolate=False,
    )  # fmt: skip
    assert fake_geant4 == [("tiny", 5000.0, 11, 3), ("tiny", (1000.0, 64000.0), 11, 8)]
    assert result["conditions"]["spectrum_MeV"] == [1000.0, 64000.0]
    spectrum = result["geant4"]["spectrum"]
    assert spectrum["joules_per_shower"] == pytest.approx(2 * FAKE_G4_S * 5.0)
    (row,) = result["results"]
    assert row["speedup_vs_geant4_spectrum"] == pytest.approx(2 * row["speedup_vs_geant4"])
    png = write_plot(result, tmp_path / "bench.png")  # Geant4's two lines
    assert png.read_bytes()[:4] == b"\x89PNG"
    for bad in [(64000.0, 1000.0), (0.0, 10.0), (1.0, float("inf"))]:
        with pytest.raises(TwinforgeError, match="spectrum must be"):
            benchmark(model_dir, spectrum=bad, geant4_showers=1)
    with pytest.raises(TwinforgeError, match="spectrum showers"):
        benchmark(model_dir, spectrum=(1.0, 2.0), spectrum_showers=0, geant4_showers=1)


def test_blocked_onnx_configurations(model_dir: Path) -> None:
    """--block-size adds cache-blocked ONNX CPU rows at the batches larger than a block."""
    result = benchmark(
        model_dir, batch_sizes=[2, 8], threads=2, timing=FAST, geant4_showers=0,
        block_size=3, isolate=False,
    )  # fmt: skip
    rows = [(r["backend"], r["block_size"], r["batch"], r["threads"]) for r in result["results"]]
    assert rows == [
        ("torch", None, 2, 2), ("torch", None, 8, 2),
        ("onnx", None, 2, 2), ("onnx", None, 8, 2), ("onnx", 3, 8, 2),
    ]  # fmt: skip
    assert result["settings"]["block_size"] == 3
    with pytest.raises(TwinforgeError, match="block size"):
        benchmark(model_dir, block_size=0, geant4_showers=0)


def test_spectrum_energies_are_log_uniform_quantiles() -> None:
    energies = bench_module.spectrum_energies(1000.0, 64000.0, 6)
    np.testing.assert_allclose(np.log2(energies / 1000.0), np.arange(6) + 0.5)
    # the mean of a cost linear in energy converges to the spectrum's (63 / ln 64 GeV)
    many = bench_module.spectrum_energies(1000.0, 64000.0, 64)
    assert many.mean() == pytest.approx(63000.0 / np.log(64.0), rel=1e-3)


@pytest.mark.skipif(
    importlib.util.find_spec("geant4_pybind") is None, reason="geant4-pybind is not installed"
)
def test_real_geant4_per_shower() -> None:
    """One real Geant4 shower at 500 MeV in 'tiny' (a second or two)."""
    result = bench_module.geant4_per_shower(load_detector("tiny"), 500.0, 11, 2, timeout=120)
    assert result["n"] == 2
    assert 0 < result["min_s_per_shower"] <= result["median_s_per_shower"] < 10
    assert result["detector"] == "tiny"
    assert result["threads"] == 1
    assert result["physics"]
    assert result["provenance"]["simulator"] == "geant4"
    json.dumps(result)
    spectrum = bench_module.geant4_spectrum(load_detector("tiny"), 200.0, 800.0, 11, 2,
                                            timeout=120)  # fmt: skip
    assert spectrum["n"] == 2
    assert spectrum["mean_energy_MeV"] == pytest.approx(200.0 * (4**0.25 + 4**0.75) / 2)
    assert 0 < spectrum["mean_cpu_s_per_shower"] < 10
    json.dumps(spectrum)
