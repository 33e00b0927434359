"""ONNX export of a surrogate's sampling path, and running it with ONNX Runtime.

The graph is the whole generator, so a deployment needs nothing from twinforge:

- inputs: ``noise`` ``(N, *noise_shape)`` float32 (what ``model.noise`` draws: a standard
  normal for every shipped family), ``energy`` ``(N,)`` float32 MeV, ``pdg`` ``(N,)`` int64 PDG
  ids, ``theta`` and ``phi`` ``(N,)`` float32 rad;
- output: ``showers`` ``(N, V)`` float32 MeV, voxels ordered (z, alpha, r) with r fastest,
  non-negative, readout threshold applied.

Inside: the condition encoding (:meth:`ShowerTransform.encode_conditions_torch`), the model's
deterministic ``decode`` (for ODE models an unrolled fixed-step solver; where the model gives a
:class:`~twinforge.models.base.DecodeProgram`, each repeated step once, in an ONNX ``Loop``:
:mod:`twinforge.inference.program`) and the inverse feature transform, with the linear
operations after a network's last layer folded into it (:mod:`twinforge.inference.fold`). ``N``
is a dynamic axis. The file carries its description in ``metadata_props`` (twinforge version,
family, model config, binning XML, units, inputs and output).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from twinforge import __version__
from twinforge.errors import TwinforgeError
from twinforge.inference.fold import fold_linear_ops
from twinforge.showers.io import check_writable_target, commit, temporary_name

if TYPE_CHECKING:
    import onnx
    from onnxruntime import InferenceSession

    from twinforge.models.base import Surrogate

__all__ = ["INPUTS", "OUTPUT", "export_onnx", "onnx_session", "run_onnx"]

INPUTS: dict[str, str] = {
    "noise": "float32 (N, *noise_shape): the model's random input, standard normal",
    "energy": "float32 (N,): incident energy, MeV",
    "pdg": "int64 (N,): PDG particle id",
    "theta": "float32 (N,): polar angle of the incident direction, rad",
    "phi": "float32 (N,): azimuth of the incident direction, rad",
}
OUTPUT: dict[str, str] = {
    "showers": "float32 (N, V): voxel energies, MeV, ordered (z, alpha, r) with r fastest"
}


class SamplingGraph(torch.nn.Module):
    """``(noise, energy, pdg, theta, phi) -> showers (N, V) MeV``: what the ONNX file computes.

    ``decode_options`` are passed to ``model.decode`` (e.g. ``steps`` / ``solver`` of ODE
    models).
    """

    def __init__(self, surrogate: Surrogate, decode_options: Mapping[str, Any] | None = None):
        super().__init__()
        self.model = surrogate.model
        self.transform = surrogate.transform
        self.decode_options = dict(decode_options or {})

    def forward(
        self,
        noise: torch.Tensor,
        energy: torch.Tensor,
        pdg: torch.Tensor,
        theta: torch.Tensor,
        phi: torch.Tensor,
    ) -> torch.Tensor:
        c = self.transform.encode_conditions_torch(energy, pdg, theta, phi)
        features = self.model.decode(noise, c, **self.decode_options)
        return self.transform.inverse_torch(features, _keep_pdg(energy, pdg))


def _keep_pdg(energy: torch.Tensor, pdg: torch.Tensor) -> torch.Tensor:
    """``energy`` plus ``0 * pdg``: pdg is unused when the model knows one particle; this keeps it
    an input of every graph, so that all exported files have the same signature, at the cost
    of one operation on ``(N,)`` values rather than on the ``(N, V)`` showers."""
    return energy + 0.0 * pdg.to(energy.dtype)


def export_onnx(
    surrogate: Surrogate,
    path: str | Path,
    *,
    batch_size_dynamic: bool = True,
    opset: int = 17,
    overwrite: bool = False,
    decode_options: Mapping[str, Any] | None = None,
) -> Path:
    """Write the sampling path of ``surrogate`` as an ONNX file at ``path``; return the path.

    The file is written under a temporary name, checked with the ONNX checker and renamed, so
    a failure never leaves a partial file under ``path`` (nor replaces an existing one).
    ``decode_options`` (e.g. ``{"steps": 10, "solver": "euler"}`` for flow matching) fix the
    sampler inside the graph; by default the model's configured sampler is used. Traced with
    the TorchScript-based exporter (``dynamo=False``: the dynamo exporter needs onnxscript).

    Raises:
        TwinforgeError: the target exists (and not ``overwrite``) or cannot be written, the
            decode options do not apply to this family, or the export fails.
    """
    import onnx

    final = Path(path)
    check_writable_target(final, overwrite=overwrite)
    model, transform = surrogate.model, surrogate.transform
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(0)
    n = 2
    example = (
        model.noise(n, generator).to(torch.float32),
        torch.full((n,), float(transform.energy_ref), dtype=torch.float32),
        torch.full((n,), int(transform.pdgs[0]), dtype=torch.int64),
        torch.zeros(n, dtype=torch.float32),
        torch.zeros(n, dtype=torch.float32),
    )
    names = list(INPUTS)
    program = model.decode_program() if not decode_options else None

    def trace(
        module: torch.nn.Module,
        inputs: tuple[torch.Tensor, ...],
        input_names: list[str],
        output_names: list[str],
        axes: dict[str, dict[int, str]],
    ) -> onnx.ModelProto:
        return _trace(surrogate, module, inputs, input_names, output_names,
                      axes if batch_size_dynamic else None, opset)  # fmt: skip

    tmp = temporary_name(final)
    try:
        if program is None:
            axes = {name: {0: "N"} for name in [*names, "showers"]}
            graph = SamplingGraph(surrogate, decode_options)
            proto = trace(graph, example, names, ["showers"], axes)
        else:
            from twinforge.inference.program import program_model

            proto = program_model(surrogate, program, example, names, trace)
        fold_linear_ops(proto)
        _add_metadata(proto, surrogate, example[0].shape[1:], opset, decode_options)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        model.train(was_training)
    return final


def _trace(
    surrogate: Surrogate,
    module: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]] | None,
    opset: int,
) -> onnx.ModelProto:
    """``module`` traced into an ONNX model (TorchScript-based exporter, ``dynamo=False``: the
    dynamo exporter needs onnxscript), held in memory."""
    import io

    import onnx

    _register_threshold()
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter
            torch.onnx.export(
                module,
                inputs,
                buffer,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    except TypeError as exc:
        raise TwinforgeError(f"cannot export the {surrogate.family} model: {exc}") from None
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TwinforgeError(
            f"ONNX export of the {surrogate.family} model failed: {first}"
        ) from exc
    return onnx.load_from_string(buffer.getvalue())


def _register_threshold() -> None:
    """Export ``torch.nn.functional.threshold(x, t, 0)`` (the readout threshold) as ONNX
    ``ThresholdedRelu``: one pass over the voxels, where the exporter's own choice (none for a
    non-zero threshold) or a ``Where`` costs several."""
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx.symbolic_helper import _get_const, _unimplemented

    def threshold(g: Any, x: Any, threshold: Any, value: Any) -> Any:
        if float(_get_const(value, "f", "value")) != 0.0:
            return _unimplemented("threshold", "a replacement value other than 0", x)
        return g.op("ThresholdedRelu", x, alpha_f=float(_get_const(threshold, "f", "threshold")))

    register_custom_op_symbolic("aten::threshold", threshold, 10)


def _add_metadata(
    proto: Any,
    surrogate: Surrogate,
    noise_shape: tuple[int, ...],
    opset: int,
    decode_options: Mapping[str, Any] | None,
) -> None:
    model = surrogate.model
    meta = {
        "twinforge_version": __version__,
        "family": surrogate.family,
        "model_config": json.dumps(model.config, default=str),
        "decode_options": json.dumps(dict(decode_options or {}), default=str),
        "transform": json.dumps(surrogate.transform.config()),
        "n_voxels": str(surrogate.transform.n_voxels),
        "noise_shape": json.dumps(list(noise_shape)),
        "pdgs": json.dumps(list(surrogate.transform.pdgs)),
        "binning_xml": surrogate.binning_xml,
        "units": "energy MeV, angles rad, length mm",
        "voxel_order": "(z, alpha, r), r fastest: index = z * n_alpha * n_r + alpha * n_r + r",
        "inputs": json.dumps(INPUTS),
        "outputs": json.dumps(OUTPUT),
        "opset": str(opset),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        f"twinforge {surrogate.family} fast shower simulation: (noise, energy MeV, pdg, theta rad,"
        f" phi rad) -> showers (N, {surrogate.transform.n_voxels}) MeV"
    )
    proto.producer_name = "twinforge"
    proto.producer_version = __version__


def onnx_session(path: str | Path, *, threads: int | None = None) -> InferenceSession:
    """An ONNX Runtime session on the CPU for an exported file (``threads``: intra-op threads).

    Raises:
        TwinforgeError: the file is missing or not a loadable ONNX model.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise TwinforgeError(f"{path}: ONNX file not found")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise TwinforgeError(f"{path}: not a loadable ONNX model ({exc})") from None


def run_onnx(
    session: InferenceSession,
    noise: ArrayLike,
    energy: ArrayLike,
    pdg: ArrayLike = 11,
    theta: ArrayLike = 0.0,
    phi: ArrayLike = 0.0,
) -> NDArray[np.float32]:
    """Showers ``(N, V)`` float32 MeV from an exported graph.

    ``noise`` is ``(N, *noise_shape)``; ``energy`` (MeV) is ``(N,)``; ``pdg``, ``theta`` and
    ``phi`` (rad) are ``(N,)`` or scalars (broadcast).
    """
    z = np.ascontiguousarray(noise, dtype=np.float32)
    n = z.shape[0]
    feed: dict[str, NDArray[Any]] = {"noise": z}
    for name, value in (("energy", energy), ("pdg", pdg), ("theta", theta), ("phi", phi)):
        arr = np.asarray(value).reshape(-1)
        if arr.size == 1:
            arr = np.full(n, arr[0])
        if arr.shape != (n,):
            raise TwinforgeError(f"{name}: expected {n} values (one per noise row), got {arr.size}")
        feed[name] = arr
    wanted = {i.name: i.type for i in session.get_inputs()}
    for name in list(feed):
        if name not in wanted:
            del feed[name]
        else:
            feed[name] = feed[name].astype(np.int64 if "int64" in wanted[name] else np.float32)
    (showers,) = session.run(["showers"], feed)
    return np.asarray(showers, dtype=np.float32)
