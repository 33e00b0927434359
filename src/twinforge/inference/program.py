"""ONNX export of a decode written as a program (:class:`~twinforge.models.base.DecodeProgram`).

Tracing a decode that repeats a step unrolls it: the layer-wise flow's 45 shape-flow inverses
and its energy flow's 135 autoregressive passes made a graph whose TorchScript export had not
finished in 16 minutes. Here every step of the program is traced on its own (a
:class:`~twinforge.models.base.Repeat`'s function once) and the pieces are joined into one
model, each ``Repeat`` an ONNX ``Loop``: the export time and the graph do not grow with the
number of repetitions. The condition encoding comes first and the inverse feature transform
last; inputs and output are those of every exported file
(:data:`~twinforge.inference.export.INPUTS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from twinforge.errors import TwinforgeError
from twinforge.inference.export import _keep_pdg
from twinforge.models.base import Call, DecodeProgram, Repeat

if TYPE_CHECKING:
    import onnx

    from twinforge.models.base import Surrogate

__all__ = ["program_model"]

Trace = Callable[
    [torch.nn.Module, tuple[torch.Tensor, ...], list[str], list[str], dict[str, dict[int, str]]],
    "onnx.ModelProto",
]
"""``trace(module, example, input_names, output_names, dynamic_axes)``: the traced module."""


class _Piece(torch.nn.Module):
    """``fn`` as a module for the tracer; ``owner`` registers the weights it uses."""

    def __init__(self, fn: Callable[..., Any], owner: torch.nn.Module) -> None:
        super().__init__()
        self.fn, self.owner = fn, owner

    def forward(self, *args: torch.Tensor) -> Any:
        return self.fn(*args)


def program_model(
    surrogate: Surrogate,
    program: DecodeProgram,
    example: tuple[torch.Tensor, ...],
    input_names: list[str],
    trace: Trace,
) -> onnx.ModelProto:
    """The sampling graph of ``surrogate``, its decode given by ``program``.

    ``example`` holds the values of ``input_names`` (``noise, energy, pdg, theta, phi``);
    ``trace`` traces one piece (see :data:`Trace`).

    Raises:
        TwinforgeError: the traced pieces do not take every input.
    """
    from onnx import TensorProto, helper

    transform = surrogate.transform

    def finish(features: torch.Tensor, energy: torch.Tensor, pdg: torch.Tensor) -> torch.Tensor:
        return transform.inverse_torch(features, _keep_pdg(energy, pdg))

    ops: list[Call | Repeat] = [
        Call(transform.encode_conditions_torch, ("energy", "pdg", "theta", "phi"), ("c",)),
        *program.ops,
        Call(finish, ("features", "energy", "pdg"), ("showers",)),
    ]
    inputs = dict(zip(input_names, example, strict=True))
    with torch.no_grad():
        c = transform.encode_conditions_torch(*example[1:])
        values = program.evaluate({**inputs, "c": c})
    steps_major = program.steps_major()

    def axes(names: list[str]) -> dict[str, dict[int, str]]:
        return {n: {1: "N"} if n in steps_major else {0: "N"} for n in names}

    owner = surrogate.model
    nodes: list[Any] = []
    initializers: list[Any] = []
    declared: dict[str, Any] = {}
    outputs: list[Any] = []
    for k, op in enumerate(ops):
        prefix = f"op{k}/"
        if isinstance(op, Call):
            names_in, names_out = list(op.inputs), list(op.outputs)
            args = tuple(values[n] for n in names_in)
            piece = trace(_Piece(op.fn, owner), args, names_in, names_out,
                          axes(names_in + names_out))  # fmt: skip
            _rename(piece.graph, prefix, {n: n for n in names_in + names_out})
            nodes += piece.graph.node
            initializers += piece.graph.initializer
            declared.update({v.name: v for v in piece.graph.input})
            if op.outputs == ("showers",):
                outputs = list(piece.graph.output)
            continue
        body_in = (["row"] if op.per_step else []) + ["state", *op.shared]
        args = ((values[op.per_step][0],) if op.per_step else ()) + (
            values[op.state],
            *(values[n] for n in op.shared),
        )
        piece = trace(_Piece(op.fn, owner), args, body_in, ["next"], axes([*body_in, "next"]))
        _rename(piece.graph, prefix, {n: n for n in op.shared})  # outer-scope values
        gather = []
        if op.per_step:
            gather = [helper.make_node("Gather", [op.per_step, prefix + "iter"],
                                       [prefix + "row"], axis=0)]  # fmt: skip
        scan = [helper.make_node("Identity", [prefix + "next"], [prefix + "scan"])]
        body = helper.make_graph(
            [
                *gather,
                *piece.graph.node,
                helper.make_node("Identity", [prefix + "cond_in"], [prefix + "cond_out"]),
                *(scan if op.stacked else []),
            ],
            f"{prefix}body",
            [
                helper.make_tensor_value_info(prefix + "iter", TensorProto.INT64, []),
                helper.make_tensor_value_info(prefix + "cond_in", TensorProto.BOOL, []),
                next(v for v in piece.graph.input if v.name == prefix + "state"),
            ],
            [
                helper.make_tensor_value_info(prefix + "cond_out", TensorProto.BOOL, []),
                piece.graph.output[0],
                *(
                    [helper.make_tensor_value_info(prefix + "scan", TensorProto.FLOAT, None)]
                    if op.stacked
                    else []
                ),
            ],
            initializer=list(piece.graph.initializer),
        )
        steps = helper.make_tensor(prefix + "steps", TensorProto.INT64, [], [op.steps])
        nodes += [
            helper.make_node("Constant", [], [prefix + "steps"], value=steps),
            helper.make_node("Loop", [prefix + "steps", "", op.state],
                             [op.output, *([op.stacked] if op.stacked else [])],
                             body=body, name=prefix + "loop"),
        ]  # fmt: skip
    missing = [name for name in input_names if name not in declared]
    if missing:
        raise TwinforgeError(f"ONNX export: the traced pieces do not take {', '.join(missing)}")
    graph = helper.make_graph(
        nodes, "twinforge", [declared[n] for n in input_names], outputs, initializer=initializers
    )
    model = helper.make_model(graph, opset_imports=list(piece.opset_import))
    model.ir_version = piece.ir_version
    return model


def _rename(graph: onnx.GraphProto, prefix: str, keep: dict[str, str]) -> None:
    """Rename every value and node of ``graph`` (subgraphs included) to ``prefix + name``,
    or to ``keep[name]``."""

    def new(name: str) -> str:
        return name if not name else keep.get(name, prefix + name)

    def walk(g: Any) -> None:
        for node in g.node:
            node.input[:] = [new(n) for n in node.input]
            node.output[:] = [new(n) for n in node.output]
            node.name = new(node.name)
            for attr in node.attribute:
                if attr.HasField("g"):
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)
        for value in [*g.input, *g.output, *g.value_info, *g.initializer]:
            value.name = new(value.name)
        for sparse in g.sparse_initializer:
            sparse.values.name = new(sparse.values.name)

    walk(graph)
