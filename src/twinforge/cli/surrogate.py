"""``twinforge surrogate fit | predict | plot | optimise``: surrogates of campaign outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from twinforge._json import plain
from twinforge.cli._common import catalog_option, console, save_figure, say
from twinforge.cli.simulate import _assignments
from twinforge.errors import ConfigError

app = typer.Typer(
    help="Surrogates with uncertainty of a campaign's scalar outputs: fit, predict, plot, "
    "optimise.",
    no_args_is_help=True,
)


@app.command("fit")
def fit(
    results: Path = typer.Argument(..., help="A merged campaign result file (.h5)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model directory to write."),
    output: list[str] = typer.Option(
        [], "--output", "-y", help="Output to learn (repeatable; default: every float output)."
    ),
    kind: str = typer.Option("gp", "--kind", "-k", help="Surrogate: gp (default) or ensemble."),
    option: list[str] = typer.Option([], "--option", "-O", help="Surrogate option NAME=VALUE."),
    name: str | None = typer.Option(None, "--name", help="Catalogue the model under this name."),
    catalog: str | None = catalog_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing directory."),
) -> None:
    """Fit a surrogate on a campaign's results and save it (JSON + safetensors)."""
    from twinforge.surrogate import create, read_observations

    data = read_observations(results, output or None)
    model = create(kind, _assignments(option, "--option")).fit(data)
    model.save(out, overwrite=overwrite)
    noise = "each point's own (replicates)" if data.variances is not None else "learned"
    say(f"fitted a {kind} surrogate of {', '.join(model.outputs)} on {len(data)} points "
        f"(noise: {noise}) -> {out}")  # fmt: skip
    if name is not None:
        from twinforge.catalog import Catalog

        with Catalog.open(catalog) as cat:
            record = cat.add_model(
                name,
                architecture=f"surrogate-{kind}",
                path=out,
                description=f"{kind} surrogate of {', '.join(model.outputs)} from {results.name}",
                provenance={"surrogate": kind, "outputs": model.outputs,
                            "n_points": len(data), "sources": data.sources},
            )  # fmt: skip
        say(f"catalogued as {record.global_id} ({name})")


def _points(at: list[str], points_file: Path | None) -> dict[str, Any]:
    if points_file is not None:
        import numpy as np

        if not points_file.is_file():
            raise ConfigError(f"{points_file}: no such file")
        text = points_file.read_text()
        if points_file.suffix == ".json":
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"{points_file}: not valid JSON ({exc})") from None
            return {k: np.atleast_1d(v) for k, v in data.items()}
        import csv

        rows = list(csv.DictReader(text.splitlines()))
        if not rows:
            raise ConfigError(f"{points_file}: no rows (a CSV with a header of parameter names)")
        out: dict[str, Any] = {}
        for key in rows[0]:
            column = [r[key] for r in rows]
            try:
                out[key] = np.asarray(column, dtype=float)
            except ValueError:
                out[key] = np.asarray(column)
        return out
    if not at:
        raise ConfigError("give the points: --at NAME=VALUE (repeatable) or --points FILE")
    columns = {k: v if isinstance(v, list) else [v] for k, v in _assignments(at, "--at").items()}
    n = max(len(v) for v in columns.values())
    for k, v in columns.items():  # single values apply to every point
        if len(v) not in (1, n):
            raise ConfigError(f"--at {k}: {len(v)} values where another parameter has {n}")
        columns[k] = v * n if len(v) == 1 else v
    return columns


def _complete(model: Any, points: dict[str, Any]) -> dict[str, Any]:
    """Constants of the space filled in where the points leave them out."""
    n = len(next(iter(points.values())))
    for d in model.encoder.space.dimensions:
        if d.constant and d.name not in points:
            points[d.name] = d.constant_column(n)
    return points


@app.command("predict")
def predict(
    model_dir: Path = typer.Argument(..., help="A surrogate directory."),
    at: list[str] = typer.Option([], "--at", help="Parameter NAME=VALUE, or NAME=[v1, v2, ...]."),
    points_file: Path | None = typer.Option(None, "--points", help="CSV or JSON of points."),
    output: list[str] = typer.Option([], "--output", "-y", help="Outputs (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Mean and standard deviation of each output at the given points."""
    from rich.table import Table

    from twinforge.surrogate import load

    model = load(model_dir)
    points = _complete(model, _points(at, points_file))
    pred = model.predict(points, output or None)
    if as_json:
        data = {"points": {k: [plain(x) for x in v] for k, v in points.items()}}
        for k in pred.mean:
            data[k] = {"mean": pred.mean[k].tolist(), "std": pred.std(k).tolist(),
                       "noise_std": pred.noise[k].clip(0).__pow__(0.5).tolist()}  # fmt: skip
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(*points, *(f"{k} (mean ± std)" for k in pred.mean))
    n = len(next(iter(points.values())))
    for i in range(n):
        row = [str(plain(points[k][i])) for k in points]
        row += [f"{pred.mean[k][i]:.6g} ± {pred.std(k)[i]:.2g}" for k in pred.mean]
        table.add_row(*row)
    console.print(table)


@app.command("optimise")
def optimise_command(
    model_dir: Path = typer.Argument(..., help="A surrogate directory."),
    output: str = typer.Option(..., "--output", "-y", help="The output to optimise."),
    minimise: bool = typer.Option(False, "--minimise", help="Find the smallest mean."),
    maximise: bool = typer.Option(False, "--maximise", help="Find the largest mean."),
    target: float | None = typer.Option(None, "--target", help="Find where the output is this."),
    verify: int = typer.Option(
        0, "--verify", help="Check the answer with this many real simulations."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the search and of the verification."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The parameters that minimise, maximise or hit a target in one output, with the
    surrogate's uncertainty there (and, with --verify, what the simulator gives)."""
    from twinforge.surrogate import load
    from twinforge.surrogate.optimise import optimise

    goals = [g for g, on in (("minimise", minimise), ("maximise", maximise),
                             ("target", target is not None)) if on]  # fmt: skip
    if len(goals) != 1:
        raise ConfigError("give exactly one of --minimise, --maximise, --target VALUE")
    model = load(model_dir)
    best = optimise(model, output, goals[0], target=target, seed=seed)  # type: ignore[arg-type]
    result: dict[str, Any] = {
        "point": {k: plain(v) for k, v in best.point.items()},
        "output": output,
        "mean": best.mean,
        "std": best.std,
    }
    if verify > 0:
        result["verified"] = _verify(model, best.point, output, verify, seed)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    where = ", ".join(f"{k} = {plain(v)}" for k, v in best.point.items())
    unit = f" {model.units[output]}" if model.units.get(output) else ""
    say(f"{goals[0]} {output}: {best.mean:.6g} ± {best.std:.2g}{unit} at {where}")
    if "verified" in result:
        v = result["verified"]
        say(f"simulated {v['n']} times there: {v['mean']:.6g} ± {v['sem']:.2g} (standard error)")


def _verify(model: Any, point: dict[str, Any], output: str, n: int, seed: int) -> dict[str, Any]:
    import numpy as np

    from twinforge.simulation import registry

    name = model.sources.get("simulator")
    if not name:
        raise ConfigError("the surrogate does not record its simulator; cannot verify")
    sim = registry.create(name, model.sources.get("simulator_setup") or {})
    points = {k: np.repeat(np.asarray([v]), n) for k, v in point.items()}
    result = sim.run(points, seed=seed)
    if output in result.outputs:  # a table: n independent values
        values = np.asarray(result.outputs[output], dtype=float)
        return {"n": n, "mean": float(values.mean()),
                "sem": float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                "values": values.tolist()}  # fmt: skip
    # a per-point observable of the format (a calorimeter's response from n showers)
    _, observed, variances = sim.format.observe_result(sim, points, result)
    sem = float(np.sqrt(variances[output][0])) if variances else float("nan")
    return {"n": n, "mean": float(observed[output][0]), "sem": sem}


@app.command("plot")
def plot(
    model_dir: Path = typer.Argument(..., help="A surrogate directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Figure to write (.png or .pdf)."),
    output: str | None = typer.Option(None, "--output", "-y", help="Output (default: first)."),
    at: list[str] = typer.Option(
        [], "--at", help="Reference point NAME=VALUE (default: the best training point)."
    ),
) -> None:
    """One panel per dimension: the surrogate's mean ± 2 std along it through a reference point,
    and the training points."""
    from twinforge.surrogate import load
    from twinforge.surrogate.plots import slice_figure

    model = load(model_dir)
    fig = slice_figure(model, output or model.outputs[0], _assignments(at, "--at"))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out)
    say(f"wrote {out}")
