"""``twinforge export``: a trained model's sampling path as an ONNX file."""

from __future__ import annotations

from pathlib import Path

import typer

from twinforge.cli._common import say


def export(
    model: Path = typer.Argument(..., help="Model directory."),
    onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write."),
    steps: int | None = typer.Option(
        None, min=1, help="ODE models: fixed solver steps in the graph (default: the model's)."
    ),
    solver: str | None = typer.Option(
        None, help="ODE models: euler, midpoint or rk4 (default: the model's)."
    ),
    opset: int = typer.Option(17, min=13, help="ONNX opset version."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the ONNX file."),
) -> None:
    """Export (noise, energy MeV, pdg, theta rad, phi rad) -> showers MeV as an ONNX graph.

    The graph includes the condition encoding and the inverse transforms, so ONNX Runtime
    alone generates showers; the batch size is dynamic.
    """
    from twinforge.inference import export_onnx
    from twinforge.models import Surrogate

    surrogate = Surrogate.load(model)
    options = {k: v for k, v in (("steps", steps), ("solver", solver)) if v is not None}
    out = export_onnx(surrogate, onnx, opset=opset, overwrite=overwrite, decode_options=options)
    extra = "".join(f", {k}={v}" for k, v in options.items())
    say(f"wrote {out}: {surrogate.family} model {model} (opset {opset}{extra})")
