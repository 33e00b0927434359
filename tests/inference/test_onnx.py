"""ONNX export: ONNX Runtime reproduces PyTorch's showers for every model family.

Parity criterion: ``|onnx - torch| <= ATOL + RTOL * |torch|`` elementwise, with RTOL = 1e-4 (the
issue's tolerance) and ATOL = 1e-5 MeV for voxels near zero (where the inverse transform's
``exp(y) - eps`` cancels: their relative error is meaningless). 1e-5 MeV is below 0.1 % of the
tiny detector's 15.15 keV readout threshold. A voxel whose value lies within RTOL of the
threshold may be zeroed on one side only; such voxels (if any) are excluded.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from twinforge import __version__
from twinforge.errors import TwinforgeError
from twinforge.inference import INPUTS, export_onnx, onnx_session, run_onnx
from twinforge.inference.quantize import convert_float16, quantize_int8
from twinforge.models import ShowerTransform, Surrogate, model_class
from twinforge.showers import Conditions
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers, write_synthetic_file

RTOL = 1e-4
ATOL = 1e-5  # MeV
THRESHOLD = 0.01515  # MeV
PDGS = [11, 22]
SMALL_FM = {"hidden": 32, "blocks": 2, "time_dim": 8, "embed_dim": 16, "steps": 4}
# small configs keep the export (the tracer's time grows with the graph) within seconds;
# families not listed use their defaults
SMALL = {
    "flow-matching": SMALL_FM,
    "flow": {"energy_transforms": 1, "energy_hidden": [16], "shape_transforms": 2,
             "shape_hidden": [32]},
}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    cond = SyntheticConfig(detector="tiny", n_events=300, seed=6).conditions()
    return synthetic_showers("tiny", cond, 1), cond.energy


@pytest.fixture(scope="module")
def binning_xml() -> str:
    from twinforge.detector.config import load_detector

    return load_detector("tiny").binning().to_xml()


def make_surrogate(family: str, data, binning_xml: str, pdgs: list[int] = PDGS) -> Surrogate:
    """A family's default (or small) model on the tiny detector, with non-trivial weights."""
    klass = model_class(family)
    showers, energy = data
    transform = ShowerTransform(
        96, scale=0.015, threshold=THRESHOLD, eps=1e-6, pdgs=list(pdgs)
    ).fit(showers, energy)
    torch.manual_seed(0)
    model = klass(SMALL.get(family, {}), 96, transform.n_conditions)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # zero-initialised tensors (residual branches, norm biases) get weight
        for p in model.parameters():
            if p.is_floating_point() and not p.any():
                p.add_(0.02 * torch.randn(p.shape, generator=gen))
    model.eval()
    return Surrogate(model, transform, binning_xml, {"note": "onnx test"})


def random_conditions(n: int, seed: int, pdgs: list[int] = PDGS) -> Conditions:
    rng = np.random.default_rng(seed)
    return Conditions.make(
        np.exp(rng.uniform(np.log(1e3), np.log(6.4e4), n)),
        rng.choice(pdgs, n),
        rng.uniform(0.0, 0.3, n),
        rng.uniform(-np.pi, np.pi, n),
    )


def assert_parity(onnx_out: np.ndarray, torch_out: np.ndarray) -> None:
    assert onnx_out.shape == torch_out.shape
    assert onnx_out.dtype == np.float32
    hi = np.maximum(onnx_out, torch_out)
    lo = np.minimum(onnx_out, torch_out)
    at_threshold = (lo == 0) & (np.abs(hi - THRESHOLD) <= RTOL * THRESHOLD)
    assert at_threshold.mean() < 0.01
    keep = ~at_threshold
    np.testing.assert_allclose(onnx_out[keep], torch_out[keep], rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def showers_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    return write_synthetic_file(SyntheticConfig(detector="tiny", n_events=200, seed=7), path)


def test_onnx_parity_dequantized_flow(tmp_path: Path, showers_file: Path) -> None:
    """The flow with dequantisation noise (its transform's threshold cut inside the graph);
    every family's parity with its own transform is in tests/models/test_contract.py."""
    from twinforge.training.train import TrainConfig, run_training

    config = TrainConfig.model_validate(
        {
            "name": "flow-onnx",
            "data": {"files": [str(showers_file)], "chunk_events": 200},
            "model": {"family": "flow", "config": SMALL["flow"]},
            "transform": {"kind": "layers", "dequantize": True},
            "optim": {"max_steps": 2, "batch_size": 32},
            "output": str(tmp_path / "model"),
        }
    )
    surrogate = Surrogate.load(run_training(config, quiet=True))
    assert surrogate.transform.dequantize
    session = onnx_session(export_onnx(surrogate, tmp_path / "model.onnx"))
    cond = random_conditions(37, 11, [11])
    reference = surrogate.sample(cond.energy, cond.pdg, cond.theta, cond.phi, seed=11)
    noise = surrogate.model.noise(37, torch.Generator().manual_seed(11))  # sample's noise
    out = run_onnx(session, noise.numpy(), cond.energy, cond.pdg, cond.theta, cond.phi)
    assert np.all((out == 0) | (out >= THRESHOLD))
    assert_parity(out, reference)
    assert np.count_nonzero(reference) > 0


@pytest.mark.parametrize("family", ["vae", "flow-matching"])
def test_onnx_parity_several_particles(tmp_path: Path, data, binning_xml: str, family: str) -> None:
    """One-hot particle conditions inside the graph (hand-built models, two particles)."""
    surrogate = make_surrogate(family, data, binning_xml)
    session = onnx_session(export_onnx(surrogate, tmp_path / "model.onnx"))
    cond = random_conditions(37, 13)
    assert len(set(cond.pdg.tolist())) == 2
    reference = surrogate.sample(cond.energy, cond.pdg, cond.theta, cond.phi, seed=13)
    noise = surrogate.model.noise(37, torch.Generator().manual_seed(13))
    out = run_onnx(session, noise.numpy(), cond.energy, cond.pdg, cond.theta, cond.phi)
    assert_parity(out, reference)


def _nodes(graph: onnx.GraphProto, op_type: str) -> list[onnx.NodeProto]:
    """The nodes of ``op_type`` in ``graph`` and its subgraphs."""
    found = [n for n in graph.node if n.op_type == op_type]
    for n in graph.node:
        for a in n.attribute:
            if a.HasField("g"):
                found += _nodes(a.g, op_type)
    return found


def _node_count(graph: onnx.GraphProto) -> int:
    subgraphs = [a.g for n in graph.node for a in n.attribute if a.HasField("g")]
    return len(graph.node) + sum(_node_count(g) for g in subgraphs)


def test_flow_exports_its_repeated_steps_as_loops(tmp_path: Path, data, binning_xml: str) -> None:
    """The flow's decode is a DecodeProgram: the export holds one autoregressive pass of the
    energy flow and one layer of the layer-wise shape flow, each in an ONNX Loop (ONNX Runtime
    = PyTorch), and the graph does not grow with the number of layers."""
    counts = {}
    for layers in (3, 6):
        klass = model_class("flow")
        showers, energy = data
        transform = ShowerTransform(96, scale=0.015, threshold=THRESHOLD, eps=1e-6,
                                    pdgs=PDGS).fit(showers, energy)  # fmt: skip
        torch.manual_seed(0)
        config = {**SMALL["flow"], "shape_layerwise": True, "shape_flow": "nsf",
                  "n_layers": layers}  # fmt: skip
        model = klass(config, 96, transform.n_conditions).eval()
        with torch.no_grad():  # the layer splines start at the identity: give them weight
            for p in model.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        surrogate = Surrogate(model, transform, binning_xml, {"note": "onnx test"})
        path = export_onnx(surrogate, tmp_path / f"layerwise-{layers}.onnx")
        proto = onnx.load(str(path))
        loops = {n.output[0]: n for n in proto.graph.node if n.op_type == "Loop"}
        assert sorted(loops) == ["last_layer", "layer_energy"]
        assert (
            onnx.numpy_helper.to_array(
                next(n for n in proto.graph.node if n.output[0] == loops["last_layer"].input[0])
                .attribute[0]
                .t
            )
            == layers
        )
        counts[layers] = _node_count(proto.graph)
        cond = random_conditions(23, 5)
        reference = surrogate.sample(cond.energy, cond.pdg, cond.theta, cond.phi, seed=5)
        noise = surrogate.model.noise(23, torch.Generator().manual_seed(5))
        out = run_onnx(onnx_session(path), noise.numpy(), cond.energy, cond.pdg, cond.theta,
                       cond.phi)  # fmt: skip
        assert_parity(out, reference)
    assert counts[3] == counts[6]
    # the reduced-precision variants reach into the loop bodies
    for precision, convert in (("int8", quantize_int8), ("float16", convert_float16)):
        variant = convert(path, tmp_path / f"layerwise.{precision}.onnx")
        if precision == "float16":
            graph = onnx.load(str(variant)).graph
            matmuls = _nodes(graph, "MatMul") + _nodes(graph, "Gemm")
            assert matmuls
            assert all(m.output[0].endswith("__fp16") for m in matmuls)
        low = run_onnx(onnx_session(variant), noise.numpy(), cond.energy, cond.pdg, cond.theta,
                       cond.phi)  # fmt: skip
        ratio = low.sum(axis=1) / reference.sum(axis=1)
        assert np.median(np.abs(ratio - 1)) < 0.05, precision


def test_flow_matching_graph_sampler_options(tmp_path: Path, data, binning_xml: str) -> None:
    surrogate = make_surrogate("flow-matching", data, binning_xml)
    options = {"steps": 3, "solver": "rk4"}
    path = export_onnx(surrogate, tmp_path / "fm.onnx", decode_options=options)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["decode_options"]) == options
    cond = random_conditions(9, 3)
    noise = surrogate.model.noise(9, torch.Generator().manual_seed(3))
    transform = surrogate.transform
    with torch.no_grad():
        c = torch.from_numpy(transform.encode_conditions(cond))
        features = surrogate.model.decode(noise, c, **options)
        reference = transform.inverse_torch(
            features, torch.tensor(cond.energy, dtype=torch.float32)
        )
    out = run_onnx(onnx_session(path), noise.numpy(), cond.energy, cond.pdg, cond.theta, cond.phi)
    assert_parity(out, reference.numpy())
    with pytest.raises(TwinforgeError, match="cannot export"):
        export_onnx(
            make_surrogate("vae", data, binning_xml), tmp_path / "v.onnx",
            decode_options={"steps": 3},
        )  # fmt: skip
    with pytest.raises(TwinforgeError, match="solver"):
        export_onnx(surrogate, tmp_path / "bad.onnx", decode_options={"solver": "heun"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fm.onnx"]


def test_single_particle_and_fixed_batch(tmp_path: Path, data, binning_xml: str) -> None:
    surrogate = make_surrogate("vae", data, binning_xml, pdgs=[11])
    path = export_onnx(surrogate, tmp_path / "vae.onnx", batch_size_dynamic=False)
    session = onnx_session(path)
    # pdg stays an input (same signature for every model) although it does not matter here
    assert [i.name for i in session.get_inputs()] == list(INPUTS)
    assert session.get_inputs()[0].shape == [2, surrogate.model.noise(1).shape[1]]
    noise = surrogate.model.noise(2, torch.Generator().manual_seed(0)).numpy()
    out = run_onnx(session, noise, [2e3, 5e4], 11, 0.0, 0.0)  # scalars broadcast
    reference = surrogate.sample([2e3, 5e4], seed=0)
    assert_parity(out, reference)
    with pytest.raises(TwinforgeError, match="expected 2 values"):
        run_onnx(session, noise, [1e3, 2e3, 3e3])


def test_metadata(tmp_path: Path, data, binning_xml: str) -> None:
    surrogate = make_surrogate("flow-matching", data, binning_xml)
    proto = onnx.load(str(export_onnx(surrogate, tmp_path / "fm.onnx", opset=17)))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["twinforge_version"] == __version__
    assert meta["family"] == "flow-matching"
    assert meta["binning_xml"] == binning_xml
    assert meta["n_voxels"] == "96"
    assert json.loads(meta["noise_shape"]) == [96]
    assert json.loads(meta["model_config"]) == surrogate.model.config
    assert json.loads(meta["transform"]) == surrogate.transform.config()
    assert json.loads(meta["pdgs"]) == PDGS
    assert "MeV" in meta["units"]
    assert "rad" in meta["units"]
    assert set(json.loads(meta["inputs"])) == set(INPUTS)
    assert "MeV" in json.loads(meta["outputs"])["showers"]
    assert proto.producer_name == "twinforge"
    assert any(o.version == 17 for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def test_atomic_write(tmp_path: Path, data, binning_xml: str, monkeypatch) -> None:
    surrogate = make_surrogate("vae", data, binning_xml)
    target = tmp_path / "m.onnx"
    export = importlib.import_module("twinforge.inference.export")

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # a failure after the graph was written: no file under the final name, no temporary left
    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_onnx(surrogate, target)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    export_onnx(surrogate, target)
    before = target.read_bytes()
    with pytest.raises(TwinforgeError, match="already exists"):
        export_onnx(surrogate, target)
    # a failed overwrite leaves the previous file intact
    monkeypatch.setattr(export, "_add_metadata", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_onnx(surrogate, target, overwrite=True)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    with pytest.raises(TwinforgeError, match="does not exist"):
        export_onnx(surrogate, tmp_path / "no" / "m.onnx")
    with pytest.raises(TwinforgeError, match="not found"):
        onnx_session(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(TwinforgeError, match="not a loadable ONNX model"):
        onnx_session(tmp_path / "junk.onnx")


@pytest.mark.parametrize("pdgs", [[11], [11, 22, -11]])
def test_condition_encoding_numpy_and_torch_agree(pdgs: list[int]) -> None:
    transform = ShowerTransform(4, pdgs=pdgs, energy_ref=5e3)
    cond = random_conditions(50, 4, pdgs)
    expected = transform.encode_conditions(cond)
    for pdg_dtype in (torch.int64, torch.int32, torch.float32):
        got = transform.encode_conditions_torch(
            torch.tensor(cond.energy, dtype=torch.float32),
            torch.tensor(cond.pdg).to(pdg_dtype),
            torch.tensor(cond.theta, dtype=torch.float32),
            torch.tensor(cond.phi, dtype=torch.float32),
        )
        assert got.dtype == torch.float32
        assert got.shape == expected.shape == (50, transform.n_conditions)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)
    if len(pdgs) > 1:
        with pytest.raises(TwinforgeError, match="not in the training data"):
            transform.encode_conditions_torch(
                torch.ones(1), torch.tensor([2212]), torch.zeros(1), torch.zeros(1)
            )


def test_cli_export(tmp_path: Path, data, binning_xml: str) -> None:
    import typer
    from typer.testing import CliRunner

    from twinforge.cli.export import export

    app = typer.Typer()
    app.command()(export)
    model_dir = make_surrogate("flow-matching", data, binning_xml).save(tmp_path / "fm")
    runner = CliRunner()
    out = tmp_path / "fm.onnx"
    result = runner.invoke(app, [str(model_dir), "--onnx", str(out), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["decode_options"]) == {"steps": 2}
    result = runner.invoke(app, [str(model_dir), "--onnx", str(out)])
    assert result.exit_code != 0
    assert isinstance(result.exception, TwinforgeError)
    result = runner.invoke(app, [str(model_dir), "--onnx", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
