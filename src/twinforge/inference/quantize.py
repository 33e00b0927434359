"""Reduced-precision variants of an exported ONNX model.

- :func:`quantize_int8`: ONNX Runtime's dynamic quantisation
  (``onnxruntime.quantization.quantize_dynamic``): weights of the matrix products stored as
  int8, activations quantised on the fly per batch; the condition encoding and the inverse
  transform stay float32. Runs on the CPU execution provider.
- :func:`convert_float16`: the matrix products (``Gemm``, ``MatMul``) in float16: their
  weights stored as float16, their inputs cast to float16 and their outputs back to float32;
  everything else (condition encoding, normalisations, inverse transform with its ``exp``)
  stays float32, so the inputs and output of the graph are unchanged. Written here with the
  ``onnx`` helpers (``onnxconverter-common``'s whole-graph converter fails on these graphs).
  ONNX Runtime has float16 ``Gemm``/``MatMul`` kernels on the CPU and CUDA providers; the
  speed-up is expected on GPUs, not on CPUs.

Both write atomically (temporary name, ONNX checker, rename) and keep the file's
``metadata_props`` with ``precision`` added.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from twinforge.errors import TwinforgeError

__all__ = ["FLOAT16_OPS", "PRECISIONS", "convert_float16", "quantize_int8"]

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "int8", "float16")
FLOAT16_OPS = ("Gemm", "MatMul")


def quantize_int8(source: str | Path, target: str | Path, *, overwrite: bool = False) -> Path:
    """Write the dynamic int8 quantisation of the ONNX file ``source`` at ``target``.

    Weights of ``MatMul``/``Gemm`` become int8 (signed, per tensor); activations are quantised
    per batch at run time. Inputs and output keep their float32 types and units.

    Raises:
        TwinforgeError: ``source`` is missing or not an ONNX model, ``target`` exists (and not
            ``overwrite``), or the quantisation fails.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from twinforge.showers.io import check_writable_target, commit, temporary_name

    source, target = Path(source), Path(target)
    proto = _load(source)
    check_writable_target(target, overwrite=overwrite)
    tmp = temporary_name(target)
    try:
        try:
            with _quiet_root_logger():
                quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
        except Exception as exc:  # onnxruntime.quantization raises assorted types
            raise TwinforgeError(f"{source}: int8 quantisation failed ({exc})") from None
        quantized = onnx.load(str(tmp))
        _sort_nodes(quantized.graph)
        _copy_metadata(proto, quantized, "int8")
        onnx.checker.check_model(quantized)
        onnx.save(quantized, str(tmp))
        commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def convert_float16(
    source: str | Path,
    target: str | Path,
    *,
    ops: Iterable[str] = FLOAT16_OPS,
    overwrite: bool = False,
) -> Path:
    """Write ``source`` with its matrix products (``ops``) in float16 at ``target``.

    Graph inputs and output keep float32; see the module docstring.

    Raises:
        TwinforgeError: ``source`` is missing or not an ONNX model, ``target`` exists (and not
            ``overwrite``), or the graph has none of ``ops``.
    """
    import onnx

    from twinforge.showers.io import check_writable_target, commit, temporary_name

    source, target = Path(source), Path(target)
    proto = _load(source)
    check_writable_target(target, overwrite=overwrite)
    changed = _matmuls_to_float16(proto.graph, set(ops))
    if changed == 0:
        raise TwinforgeError(f"{source}: no {', '.join(sorted(ops))} node to convert to float16")
    log.debug("%s: %d node(s) converted to float16", source, changed)
    _copy_metadata(proto, proto, "float16")
    onnx.checker.check_model(proto)
    tmp = temporary_name(target)
    try:
        onnx.save(proto, str(tmp))
        commit(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# ---------------------------------------------------------------------- helpers
def _load(source: Path) -> Any:
    import onnx

    if not source.is_file():
        raise TwinforgeError(f"{source}: ONNX file not found")
    try:
        return onnx.load(str(source))
    except Exception as exc:  # protobuf decode errors and the like
        raise TwinforgeError(f"{source}: not an ONNX model ({exc})") from None


def _matmuls_to_float16(graph: Any, ops: set[str]) -> int:
    """Rewrite ``graph`` in place, subgraphs (``Loop`` bodies) included: each node in ``ops``
    takes float16 weights and casts of its other inputs, and its output is cast back to
    float32; returns the nodes changed."""
    from onnx import TensorProto, helper, numpy_helper

    inits = {i.name: i for i in graph.initializer}
    converted: dict[str, str] = {}
    nodes = []
    changed = 0
    for index, node in enumerate(graph.node):
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                changed += _matmuls_to_float16(sub, ops)
        if node.op_type not in ops:
            nodes.append(node)
            continue
        tag = node.name or f"{node.op_type}_{index}"
        inputs = list(node.input)
        for k, name in enumerate(inputs):
            if not name:
                continue
            init = inits.get(name)
            if init is not None and init.data_type == TensorProto.FLOAT:
                if name not in converted:
                    half = numpy_helper.to_array(init).astype(np.float16)
                    converted[name] = f"{name}__fp16"
                    graph.initializer.append(numpy_helper.from_array(half, converted[name]))
                inputs[k] = converted[name]
            else:
                cast = f"{tag}__in{k}__fp16"
                nodes.append(
                    helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT16, name=cast)
                )
                inputs[k] = cast
        out = node.output[0]
        node.input[:] = inputs
        node.output[0] = f"{out}__fp16"
        nodes.append(node)
        nodes.append(
            helper.make_node(
                "Cast", [node.output[0]], [out], to=TensorProto.FLOAT, name=f"{tag}__out__fp32"
            )
        )
        changed += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = _used_names(graph)
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return changed


def _sort_nodes(graph: Any) -> None:
    """Order the nodes of ``graph`` topologically, counting the values a subgraph (a ``Loop``
    body) reads from the outer scope as inputs of its node: the quantiser's own sort misses
    those. Nodes keep their order where they may."""
    produced = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    needs = [
        {produced[n] for n in {*node.input, *_outer_names(node)} if n in produced} - {i}
        for i, node in enumerate(graph.node)
    ]
    order: list[int] = []
    placed: set[int] = set()
    while len(order) < len(needs):
        ready = [i for i in range(len(needs)) if i not in placed and needs[i] <= placed]
        if not ready:
            raise TwinforgeError("the quantised ONNX graph has a cycle")
        order += ready
        placed.update(ready)
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)


def _outer_names(node: Any) -> set[str]:
    """The values ``node``'s subgraphs read but do not define."""
    names: set[str] = set()
    for attr in node.attribute:
        for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
            defined = {v.name for v in [*sub.input, *sub.initializer]}
            defined |= {o for n in sub.node for o in n.output}
            names |= _used_names(sub) - defined
    return names


def _used_names(graph: Any) -> set[str]:
    """Every value name the nodes of ``graph`` and of its subgraphs read."""
    used = set()
    for node in graph.node:
        used.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                used |= _used_names(sub)
    return used


def _copy_metadata(source: Any, target: Any, precision: str) -> None:
    """``target``'s metadata_props := ``source``'s plus ``precision``."""
    meta = {p.key: p.value for p in source.metadata_props}
    meta["precision"] = precision
    del target.metadata_props[:]
    for key, value in meta.items():
        entry = target.metadata_props.add()
        entry.key, entry.value = key, value
    if target is not source:
        target.doc_string = source.doc_string


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Silence the root-logger advice ``quantize_dynamic`` prints ("consider pre-processing")."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
