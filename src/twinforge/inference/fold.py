"""Rewrites of an exported graph that ONNX Runtime's own optimiser does not make.

A fast model spends most of its time not in its network but in passes over the ``(N, V)``
output: at batch 1000 on one core each elementwise operation on 6480 float32 voxels costs about
3.5 us per shower, as much as a sixth of the network's last layer. Two patterns that the export
of every ``layers``-transform model contains cost three such passes and are exact to remove:

- a ``Gemm`` followed by a per-column ``Mul`` and ``Add`` by constants (the transform's
  unstandardisation, ``y * std + mean``): folded into the ``Gemm``'s weights and bias;
- a ``Gemm`` whose output is only cut into column ranges by ``Slice`` (the layer energies and
  the voxel fractions): one ``Gemm`` per range, so that no copy is made.

Both act on ``Gemm`` nodes (what ``torch.nn.Linear`` on a 2-D input exports to) with constant
(initializer) weights, ``alpha = beta = 1`` and no transposed input, in the main graph; anything
else is left as it is. The results equal the unfolded graph's up to float32 rounding.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["fold_linear_ops"]

log = logging.getLogger(__name__)

_INT64_MAX = np.iinfo(np.int64).max


def fold_linear_ops(model: Any) -> int:
    """Fold per-column affine operations into the ``Gemm`` before them and split ``Gemm``
    outputs that are only sliced by columns, in place (see the module docstring); return the
    number of nodes removed or replaced."""
    from onnx import numpy_helper

    graph = model.graph
    done = 0
    while True:
        rewrites = _Graph(graph, numpy_helper)
        changed = rewrites.fold_affine() or rewrites.split_slices()
        if not changed:
            break
        done += changed
        rewrites.drop_unused()
    if done:
        log.debug("folded %d linear operations into Gemm nodes", done)
    return done


class _Graph:
    """Lookup tables of one graph (rebuilt after every rewrite: graphs here are small)."""

    def __init__(self, graph: Any, numpy_helper: Any) -> None:
        self.graph = graph
        self.np = numpy_helper
        self.inits = {init.name: init for init in graph.initializer}
        self.constants = {
            node.output[0]: node
            for node in graph.node
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value"
        }
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
            for sub in _subgraphs(node):  # names read inside loop bodies count as used
                for name in _read_names(sub):
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {out.name for out in graph.output}

    def value(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return self.np.to_array(self.inits[name])
        if name in self.constants:
            return self.np.to_array(self.constants[name].attribute[0].t)
        return None

    def _plain_gemm(self, node: Any) -> tuple[np.ndarray, np.ndarray, bool] | None:
        """``(B as (K, in), C as (K,), transB)`` of a Gemm this module may rewrite, else None."""
        if node.op_type != "Gemm" or len(node.input) < 2:
            return None
        attrs = {a.name: a for a in node.attribute}
        if "transA" in attrs and attrs["transA"].i != 0:
            return None
        if any(name in attrs and attrs[name].f != 1.0 for name in ("alpha", "beta")):
            return None
        b = self.value(node.input[1])
        trans_b = "transB" in attrs and attrs["transB"].i == 1
        if b is None or b.ndim != 2 or b.dtype != np.float32:
            return None
        weights = b if trans_b else b.T
        k = weights.shape[0]
        c = self.value(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros(1)
        if c is None or c.size not in (1, k) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            return None
        bias = np.broadcast_to(c.reshape(-1), (k,)).astype(np.float64)
        return weights.astype(np.float64), bias, trans_b

    def _only_consumers(self, name: str) -> list[Any]:
        return [] if name in self.outputs else self.consumers.get(name, [])

    def _set_gemm(self, node: Any, weights: np.ndarray, bias: np.ndarray, trans_b: bool) -> None:
        """Give ``node`` new (own) weight and bias initializers."""
        from onnx import helper

        b = (weights if trans_b else weights.T).astype(np.float32)
        names = []
        for role, array in (("B", b), ("C", bias.astype(np.float32))):
            name = _fresh(f"{node.name or node.output[0]}_{role}", self)
            self.graph.initializer.append(self.np.from_array(np.ascontiguousarray(array), name))
            self.inits[name] = self.graph.initializer[-1]
            names.append(name)
        del node.input[1:]
        node.input.extend(names)
        for attr in list(node.attribute):
            if attr.name in ("transB", "alpha", "beta"):
                node.attribute.remove(attr)
        node.attribute.append(helper.make_attribute("transB", int(trans_b)))

    def fold_affine(self) -> int:
        """``Gemm -> Mul(const) / Add(const)``, per column or scalar: one fold; 1 if made."""
        for node in self.graph.node:
            gemm = self._plain_gemm(node)
            after = self._only_consumers(node.output[0])
            if gemm is None or len(after) != 1 or after[0].op_type not in ("Mul", "Add"):
                continue
            op = after[0]
            other = op.input[1] if op.input[0] == node.output[0] else op.input[0]
            v = self.value(other)
            weights, bias, trans_b = gemm
            if v is None or other == node.output[0] or not _per_column(v, weights.shape[0]):
                continue
            v = np.broadcast_to(v.reshape(-1), bias.shape).astype(np.float64)
            if op.op_type == "Mul":
                weights, bias = weights * v[:, None], bias * v
            else:
                bias = bias + v
            self._set_gemm(node, weights, bias, trans_b)
            node.output[0] = op.output[0]
            self.graph.node.remove(op)
            return 1
        return 0

    def split_slices(self) -> int:
        """A ``Gemm`` read only by column ``Slice`` nodes: one ``Gemm`` per slice; 1 if made."""
        for node in self.graph.node:
            gemm = self._plain_gemm(node)
            after = self._only_consumers(node.output[0])
            if gemm is None or not after:
                continue
            weights, bias, trans_b = gemm
            ranges = [self._column_range(s, weights.shape[0]) for s in after]
            if any(r is None for r in ranges):
                continue
            for piece, (start, stop) in zip(after, ranges, strict=True):
                index = list(self.graph.node).index(piece)
                replacement = type(node)()
                replacement.CopyFrom(node)
                replacement.name = f"{node.name or node.output[0]}_{start}_{stop}"
                replacement.output[0] = piece.output[0]
                self._set_gemm(replacement, weights[start:stop], bias[start:stop], trans_b)
                self.graph.node.remove(piece)
                self.graph.node.insert(index, replacement)
            self.graph.node.remove(node)
            return len(after)
        return 0

    def _column_range(self, node: Any, k: int) -> tuple[int, int] | None:
        """``(start, stop)`` of a ``Slice`` of the columns of a ``(N, k)`` value, else None."""
        if node.op_type != "Slice" or len(node.input) < 4:
            return None
        values = [self.value(name) for name in node.input[1:]]
        if any(v is None or v.size != 1 for v in values):
            return None
        start, stop, axis = (int(v.reshape(-1)[0]) for v in values[:3])
        step = int(values[3].reshape(-1)[0]) if len(values) > 3 else 1
        if axis not in (1, -1) or step != 1:
            return None
        start, stop = (max(0, min(k, x + k if x < 0 else x)) for x in (start, stop))
        return (start, stop) if stop > start else None

    def drop_unused(self) -> None:
        """Remove initializers and ``Constant`` nodes that nothing reads any more."""
        used = {name for node in self.graph.node for name in node.input}
        used |= {name for node in self.graph.node for sub in _subgraphs(node)
                 for name in _read_names(sub)}  # fmt: skip
        used |= self.outputs
        for init in list(self.graph.initializer):
            if init.name not in used:
                self.graph.initializer.remove(init)
        for node in list(self.graph.node):
            if node.op_type == "Constant" and node.output[0] not in used:
                self.graph.node.remove(node)


def _per_column(v: np.ndarray, k: int) -> bool:
    """Whether ``v`` broadcasts against ``(N, k)`` along the columns only."""
    if v.ndim > 2:
        return False
    return v.size == 1 or (v.size == k and v.shape[-1] == k)


def _fresh(stem: str, graph: _Graph) -> str:
    name, i = stem, 0
    taken = set(graph.inits) | {out for node in graph.graph.node for out in node.output}
    while name in taken:
        i += 1
        name = f"{stem}_{i}"
    return name


def _subgraphs(node: Any) -> list[Any]:
    from onnx import AttributeProto

    found = []
    for attr in node.attribute:
        if attr.type == AttributeProto.GRAPH:
            found.append(attr.g)
        elif attr.type == AttributeProto.GRAPHS:
            found.extend(attr.graphs)
    return found


def _read_names(graph: Any) -> set[str]:
    """Every name read by the nodes of ``graph`` and of the graphs inside it."""
    names = {name for node in graph.node for name in node.input}
    for node in graph.node:
        for sub in _subgraphs(node):
            names |= _read_names(sub)
    return names
