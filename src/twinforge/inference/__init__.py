"""Deployment: ONNX export, the runtime :class:`Generator` and quantisation.

Names are imported on first use, so ``import twinforge.inference`` imports neither torch nor
onnxruntime, and :class:`Generator` on an ONNX file never imports torch (nor, on any path,
Lightning or the training stack). The benchmark against Geant4 is :mod:`twinforge.bench`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twinforge.inference.export import (
        INPUTS,
        OUTPUT,
        export_onnx,
        onnx_session,
        run_onnx,
    )
    from twinforge.inference.quantize import convert_float16, quantize_int8
    from twinforge.inference.runtime import Generator, ModelInfo

__all__ = [
    "INPUTS",
    "OUTPUT",
    "Generator",
    "ModelInfo",
    "convert_float16",
    "export_onnx",
    "onnx_session",
    "quantize_int8",
    "run_onnx",
]

_WHERE = {
    "INPUTS": "export",
    "OUTPUT": "export",
    "export_onnx": "export",
    "onnx_session": "export",
    "run_onnx": "export",
    "Generator": "runtime",
    "ModelInfo": "runtime",
    "convert_float16": "quantize",
    "quantize_int8": "quantize",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(f"twinforge.inference.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'twinforge.inference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
