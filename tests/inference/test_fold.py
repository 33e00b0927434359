"""Graph rewrites after export (:mod:`twinforge.inference.fold`): exact, and only where they
apply."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from twinforge.inference import export_onnx, onnx_session, run_onnx
from twinforge.inference.fold import fold_linear_ops
from twinforge.models import ShowerTransform, Surrogate, model_class
from twinforge.simulation.synthetic import SyntheticConfig, synthetic_showers

from .test_onnx import THRESHOLD, assert_parity, random_conditions

RNG = np.random.default_rng(0)
K, IN = 7, 5


def const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def model_of(nodes: list[onnx.NodeProto], outputs: list[str], trans_b: int = 1) -> onnx.ModelProto:
    """``x (N, IN) -> Gemm -> nodes``, weights as initializers."""
    w = RNG.normal(size=(K, IN) if trans_b else (IN, K)).astype(np.float32)
    b = RNG.normal(size=K).astype(np.float32)
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=trans_b)
    graph = helper.make_graph(
        [gemm, *nodes],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", None]) for o in outputs],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto) -> list[np.ndarray]:
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(4, IN)).astype(np.float32)
    return session.run(None, {"x": x})


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node if n.op_type != "Constant"]


def slice_nodes(ranges: list[tuple[int, int]], axis: int = 1, step: int = 1) -> list:
    nodes = []
    for i, (start, stop) in enumerate(ranges):
        for part, v in (("s", start), ("e", stop), ("a", axis), ("t", step)):
            nodes.append(const(f"{part}{i}", np.array([v], np.int64)))
        names = ["y", f"s{i}", f"e{i}", f"a{i}", f"t{i}"]
        nodes.append(helper.make_node("Slice", names, [f"o{i}"]))
    return nodes


@pytest.mark.parametrize("trans_b", [0, 1])
def test_affine_and_slices_fold_into_the_gemm(trans_b: int) -> None:
    """y * std + mean, then cut into two column ranges (one to the end): one Gemm per range."""
    nodes = [
        const("std", RNG.uniform(0.5, 2.0, K).astype(np.float32)),
        helper.make_node("Mul", ["y", "std"], ["ys"]),
        const("mean", RNG.normal(size=(1, K)).astype(np.float32)),
        helper.make_node("Add", ["mean", "ys"], ["ym"]),  # the constant first works too
    ]
    for i, (start, stop) in enumerate([(0, 2), (2, np.iinfo(np.int64).max)]):
        nodes += [const(f"s{i}", np.array([start])), const(f"e{i}", np.array([stop])),
                  const(f"a{i}", np.array([-1]))]  # fmt: skip
        nodes.append(helper.make_node("Slice", ["ym", f"s{i}", f"e{i}", f"a{i}"], [f"o{i}"]))
    model = model_of(nodes, ["o0", "o1"], trans_b)
    before = run(model)
    assert fold_linear_ops(model) == 4  # Mul, Add, two slices
    assert ops(model) == ["Gemm", "Gemm"]
    assert {i.name for i in model.graph.initializer} == {
        n.input[k] for n in model.graph.node for k in (1, 2)
    }  # the old weights and constants are gone
    after = run(model)
    assert [a.shape for a in after] == [(4, 2), (4, K - 2)]
    for a, b in zip(after, before, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "case",
    ["output", "two readers", "not constant", "step 2", "rows", "third axis"],
)
def test_what_does_not_match_is_left_alone(case: str) -> None:
    if case == "output":  # the Gemm's value is a graph output as well
        nodes = [const("c", np.ones(K, np.float32)), helper.make_node("Mul", ["y", "c"], ["o"])]
        outputs = ["o", "y"]
    elif case == "two readers":
        nodes = [const("c", np.ones(K, np.float32)), helper.make_node("Mul", ["y", "c"], ["o"]),
                 helper.make_node("Relu", ["y"], ["r"])]  # fmt: skip
        outputs = ["o", "r"]
    elif case == "not constant":
        nodes = [helper.make_node("Mul", ["y", "y"], ["o"])]
        outputs = ["o"]
    elif case == "third axis":  # a (1, 1, K) constant would make the result 3-D
        nodes = [const("c", np.ones((1, 1, K), np.float32)),
                 helper.make_node("Add", ["y", "c"], ["o"])]  # fmt: skip
        outputs = ["o"]
    else:
        nodes = slice_nodes([(0, 2), (2, K)], axis=0 if case == "rows" else 1,
                            step=2 if case == "step 2" else 1)  # fmt: skip
        outputs = ["o0", "o1"]
    model = model_of(nodes, outputs)
    before = ops(model)
    assert fold_linear_ops(model) == 0
    assert ops(model) == before


@pytest.mark.parametrize("fractions", ["logit", "softmax"])
def test_a_fast_model_exports_without_passes_it_does_not_need(
    tmp_path: Path, fractions: str
) -> None:
    """A VAE with the ``layers`` transform: its last layer carries the unstandardisation and is
    split into layer energies and voxel fractions; the readout threshold is one operation; the
    showers are PyTorch's. Softmax fractions are one ``Softmax`` and one ``Mul`` by the layer
    energies: no sigmoid, no clip, no renormalisation."""
    from twinforge.detector.config import load_detector

    binning = load_detector("tiny").binning()
    cond = SyntheticConfig(detector="tiny", n_events=300, seed=6).conditions()
    showers = synthetic_showers("tiny", cond, 1)
    transform = ShowerTransform(
        96, kind="layers", scale=0.015, threshold=THRESHOLD, eps=1e-6, pdgs=[11, 22],
        layer_offsets=[int(o) for o in binning.offsets], fractions=fractions,
    ).fit(showers, cond.energy)  # fmt: skip
    torch.manual_seed(0)
    model = model_class("vae")({"hidden": [32, 16]}, transform.n_features, transform.n_conditions)
    surrogate = Surrogate(model.eval(), transform, binning.to_xml())
    path = export_onnx(surrogate, tmp_path / "vae.onnx")
    graph = onnx.load(str(path)).graph
    last = [n for n in graph.node if n.op_type == "Gemm"][-2:]
    assert [len(numpy_helper.to_array(next(i for i in graph.initializer if i.name == n.input[2])))
            for n in last] == [transform.n_layer_features, 96]  # fmt: skip
    assert not {"Slice", "Split", "Where"} & {n.op_type for n in graph.node}
    assert [n.op_type for n in graph.node].count("ThresholdedRelu") == 1
    op_types = [n.op_type for n in graph.node]
    after_gemm = op_types[len(op_types) - op_types[::-1].index("Gemm") :]  # the last layer's
    if fractions == "softmax":
        assert after_gemm.count("Softmax") == 1
        assert not {"Sigmoid", "ReduceSum", "Div"} & set(after_gemm)
        assert after_gemm.count("Max") == after_gemm.count("Min") == 1  # the layer energies'
    test = random_conditions(50, 3)
    reference = surrogate.sample(test.energy, test.pdg, test.theta, test.phi, seed=3)
    noise = model.noise(50, torch.Generator().manual_seed(3)).numpy()
    out = run_onnx(onnx_session(path), noise, test.energy, test.pdg, test.theta, test.phi)
    assert np.count_nonzero(reference) > 100
    assert_parity(out, reference)


def test_softmax_fractions_of_layers_of_different_sizes_export(
    tmp_path: Path, calochallenge_dir: Path
) -> None:
    """CaloChallenge dataset-1 photons (layers of 8 to 160 voxels, some without any): the
    softmax over each layer is padded and gathered in the graph; ONNX Runtime gives
    PyTorch's showers."""
    from twinforge.detector.readout import Readout

    readout = Readout.from_xml(calochallenge_dir / "binning_dataset_1_photons.xml")
    rng = np.random.default_rng(0)
    energy = np.exp(rng.uniform(np.log(1e3), np.log(6.4e4), 200))
    showers = rng.exponential(1.0, (200, 368)) * (rng.random((200, 368)) < 0.4)
    showers *= (energy / showers.sum(axis=1))[:, None] * 0.9
    transform = ShowerTransform(
        368, kind="layers", eps=1e-9, threshold=1e-3, pdgs=[11, 22], fractions="softmax",
        layer_offsets=[int(o) for o in readout.offsets],
    ).fit(showers, energy)  # fmt: skip
    torch.manual_seed(0)
    model = model_class("vae")({"hidden": [32, 16]}, transform.n_features, transform.n_conditions)
    surrogate = Surrogate(model.eval(), transform, readout.to_xml())
    path = export_onnx(surrogate, tmp_path / "vae.onnx")
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("Softmax") == 1
    test = random_conditions(50, 3)
    reference = surrogate.sample(test.energy, test.pdg, test.theta, test.phi, seed=3)
    noise = model.noise(50, torch.Generator().manual_seed(3)).numpy()
    out = run_onnx(onnx_session(path), noise, test.energy, test.pdg, test.theta, test.phi)
    assert np.count_nonzero(reference) > 1000
    assert_parity(out, reference)
