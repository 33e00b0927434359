"""Deployment: ONNX export of a model's sampling path and ONNX Runtime sessions."""

from twinforge.inference.export import INPUTS, OUTPUT, export_onnx, onnx_session, run_onnx

__all__ = ["INPUTS", "OUTPUT", "export_onnx", "onnx_session", "run_onnx"]
