"""Xsuite as a campaign simulator (entry point ``xsuite``): track a beam through a lattice.

The lattice is defined in the config (elements and a sequence, with Xsuite's deferred
expressions tying element strengths to *knobs*) or read from a file Xsuite saved
(``Line.to_json``). Each point sets the knobs and beam parameters, computes the optics (a
periodic ``twiss4d`` for a ring or a cell, or one from initial Twiss parameters for a transfer
line), tracks a Gaussian beam matched to the optics at the start through the line, and reports
per observation point the optics functions, the beam sizes and the normalised rms emittances,
plus the tunes (periodic lattices) and the transmission through the apertures.

A point whose optics has no stable periodic solution is a physics result, not a failure: its
``stable`` output is 0 and the other outputs are NaN.

Units: lengths m, normalised emittances m (m rad), momenta in the config as energies with a unit
(``"2 GeV"``; Xsuite's eV internally). Xsuite ships prebuilt tracking kernels for CPU in its
wheel (``xsuite/lib``), so workers, tests and the demo never compile; an install whose kernels do
not match the Xsuite packages gets a clear error naming ``xsuite-prebuild regenerate``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveInt, model_validator

from twinforge.config import StrictModel
from twinforge.errors import ConfigError, SimulationError
from twinforge.simulation.base import Output, OutputFormat, RunResult, Simulator
from twinforge.simulation.table import TableFormat
from twinforge.space import Parameter, Points
from twinforge.units import parse_quantity

__all__ = ["XsuiteBackend", "XsuiteOptions"]

ELEMENT_TYPES = (
    "Drift", "Quadrupole", "Sextupole", "Octupole", "Bend", "Multipole", "Marker",
    "LimitRect", "LimitEllipse", "Solenoid",
)  # fmt: skip
PARTICLES = {"proton": "PROTON_MASS_EV", "electron": "ELECTRON_MASS_EV"}
_BEAM = ("emit_x_norm", "emit_y_norm", "sigma_delta")
_INIT = ("betx0", "bety0", "alfx0", "alfy0")


class Knob(StrictModel):
    """A lattice variable the campaign may vary (an element strength such as ``k1f``)."""

    value: float = Field(description="its value when the space does not set it")
    unit: str | None = Field(None, description="e.g. 1/m^2 for a quadrupole gradient k1")
    min: float | None = None
    max: float | None = None
    description: str = ""


class Lattice(StrictModel):
    """A line in the config: named elements (an Xsuite type and its attributes, which may be
    expressions of knobs such as ``k1: "-k1f"``) and their sequence, repeated ``repeat`` times."""

    elements: dict[str, dict[str, Any]]
    sequence: list[str]
    repeat: PositiveInt = 1

    @model_validator(mode="after")
    def _check(self) -> Lattice:
        for name, spec in self.elements.items():
            kind = spec.get("type")
            if kind not in ELEMENT_TYPES:
                raise ValueError(
                    f"element {name!r}: type {kind!r} is not one of {', '.join(ELEMENT_TYPES)}"
                )
        missing = [n for n in self.sequence if n not in self.elements]
        if missing:
            raise ValueError(f"sequence names undefined element(s): {', '.join(missing)}")
        if not self.sequence:
            raise ValueError("the sequence is empty")
        return self


class Beam(StrictModel):
    """Default beam parameters (each is also a campaign parameter of the same name)."""

    emit_x_norm: float = Field(2.5e-6, gt=0, description="normalised rms emittance, m")
    emit_y_norm: float = Field(2.5e-6, gt=0, description="normalised rms emittance, m")
    sigma_delta: float = Field(0.0, ge=0, description="rms relative momentum spread")


class TwissInit(StrictModel):
    """Initial optics of a transfer line (each also a campaign parameter: betx0, ...)."""

    betx: float = Field(10.0, gt=0, description="m")
    bety: float = Field(10.0, gt=0, description="m")
    alfx: float = 0.0
    alfy: float = 0.0


class XsuiteOptions(StrictModel):
    """The lattice, the reference particle, the beam, what to observe."""

    lattice: Lattice | None = None
    lattice_file: str | None = Field(None, description="a line saved by Xsuite (to_json)")
    lattice_json: str | None = Field(None, description="the file's content (set for workers)")
    particle: Literal["proton", "electron"] = "proton"
    momentum: str | float = Field("1 GeV", description="reference momentum p0 c (MeV if a number)")
    periodic: bool = Field(True, description="periodic optics (ring, cell) or a transfer line")
    knobs: dict[str, Knob] = Field(default_factory=dict)
    observe: list[str] = Field(
        default_factory=list, description="element names, 'end' for the line's end (default)"
    )
    n_particles: PositiveInt = 1000
    n_turns: PositiveInt = Field(1, description="turns tracked (periodic lattices)")
    beam: Beam = Field(default_factory=Beam)
    twiss_init: TwissInit = Field(default_factory=TwissInit)

    @model_validator(mode="after")
    def _check(self) -> XsuiteOptions:
        given = [x is not None for x in (self.lattice, self.lattice_file, self.lattice_json)]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'lattice' (in the config) or 'lattice_file'")
        if not self.periodic and self.n_turns != 1:
            raise ValueError("a transfer line (periodic: false) is tracked once: n_turns 1")
        parse_quantity(self.momentum, "MeV", where="momentum")
        clash = sorted(set(self.knobs) & {*_BEAM, *_INIT})
        if clash:
            raise ValueError(f"knob names {clash} are reserved for beam parameters")
        if self.lattice is not None:
            bad = [
                n for n in self.observe
                if n != "end" and n.partition("::")[0] not in self.lattice.elements
            ]  # fmt: skip
            if bad:
                raise ValueError(f"observe: {', '.join(bad)} not in the lattice's elements")
        if len(set(self.observe)) != len(self.observe):
            raise ValueError("observe: a point is named twice")
        return self


class XsuiteBackend(Simulator):
    """Tracking with Xsuite (xtrack) on CPU."""

    name = "xsuite"
    summary = "beam optics and tracking through a lattice (Xsuite: xtrack on CPU)"
    Options: ClassVar[type[StrictModel]] = XsuiteOptions
    format: ClassVar[type[OutputFormat]] = TableFormat

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._line: Any = None

    @property
    def opts(self) -> XsuiteOptions:
        assert isinstance(self.options, XsuiteOptions)
        return self.options

    # ---------------------------------------------------------------- declaration

    def parameters(self) -> list[Parameter]:
        o = self.opts
        params = [
            Parameter(name, unit=k.unit, lower=k.min, upper=k.max, default=k.value,
                      description=k.description or "lattice knob")
            for name, k in o.knobs.items()
        ]  # fmt: skip
        for name in _BEAM:
            emittance = name != "sigma_delta"
            params.append(
                Parameter(name, unit="m" if emittance else None, lower=0.0,
                          lower_open=emittance, default=getattr(o.beam, name),
                          description=Beam.model_fields[name].description or "")
            )  # fmt: skip
        if not o.periodic:
            for name in _INIT:
                key = name[:-1]
                positive = key.startswith("bet")
                params.append(
                    Parameter(name, unit="m" if positive else None,
                              lower=0.0 if positive else None, lower_open=positive,
                              default=getattr(o.twiss_init, key),
                              description=f"initial {key} of the line")
                )  # fmt: skip
        return params

    def observation_points(self) -> list[str]:
        """Where beam sizes, emittances and optics are reported: at the entrance of the named
        elements, ``end`` for the end of the line (the default)."""
        return list(self.opts.observe) or ["end"]

    def outputs(self) -> list[Output]:
        out = [Output("stable", None, (), "int8", "1: the optics has a stable solution")]
        if self.opts.periodic:
            out += [Output("qx", None, (), "float64", "horizontal tune"),
                    Output("qy", None, (), "float64", "vertical tune")]  # fmt: skip
        out.append(Output("transmission", None, (), "float64", "fraction of particles kept"))
        for obs in self.observation_points():
            out += [
                Output(f"betx_{obs}", "m", (), "float64", f"beta function x at {obs}"),
                Output(f"bety_{obs}", "m", (), "float64", f"beta function y at {obs}"),
                Output(f"dx_{obs}", "m", (), "float64", f"dispersion x at {obs}"),
                Output(f"sigma_x_{obs}", "m", (), "float64", f"rms beam size x at {obs}"),
                Output(f"sigma_y_{obs}", "m", (), "float64", f"rms beam size y at {obs}"),
                Output(f"emit_x_{obs}", "m", (), "float64",
                       f"normalised rms emittance x of the tracked beam at {obs}"),
                Output(f"emit_y_{obs}", "m", (), "float64",
                       f"normalised rms emittance y of the tracked beam at {obs}"),
            ]  # fmt: skip
        return out

    def code(self) -> dict[str, str]:
        from importlib.metadata import version

        return {"name": "Xsuite", "version": version("xsuite")}  # it pins xtrack &c. exactly

    def provenance(self) -> dict[str, Any]:
        o = self.opts
        return {
            **super().provenance(),
            "particle": o.particle,
            "p0c_eV": self._p0c(),
            "periodic": o.periodic,
            "n_particles": o.n_particles,
            "n_turns": o.n_turns,
            "observe": self.observation_points(),
            "lattice_file": o.lattice_file,
        }

    def worker_options(self) -> dict[str, Any]:
        data = self.opts.model_dump(mode="json")
        if self.opts.lattice_file is not None:  # workers may not see the file: inline it
            path = Path(self.opts.lattice_file)
            try:
                data["lattice_json"] = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"lattice_file {path}: cannot read ({exc.strerror})") from None
            data["lattice_file"] = None
        return data

    # ---------------------------------------------------------------- set-up

    def _p0c(self) -> float:
        return parse_quantity(self.opts.momentum, "MeV", where="momentum") * 1e6

    def _build(self) -> Any:
        """The line (built once per process), knobs checked."""
        if self._line is not None:
            return self._line
        import xtrack as xt

        o = self.opts
        with _quiet():
            if o.lattice is not None:
                env = xt.Environment()
                for name, knob in o.knobs.items():
                    env[name] = knob.value
                try:
                    for name, spec in o.lattice.elements.items():
                        attrs = {k: v for k, v in spec.items() if k != "type"}
                        env.new(name, getattr(xt, spec["type"]), **attrs)
                except Exception as exc:  # xtrack raises many types for a bad attribute
                    raise ConfigError(f"xsuite lattice element {name!r}: {exc}") from None
                line = env.new_line(components=list(o.lattice.sequence) * o.lattice.repeat)
            else:
                text = o.lattice_json
                if text is None:
                    assert o.lattice_file is not None
                    try:
                        text = Path(o.lattice_file).read_text(encoding="utf-8")
                    except OSError as exc:
                        raise ConfigError(
                            f"lattice_file {o.lattice_file}: cannot read ({exc.strerror})"
                        ) from None
                try:
                    line = xt.Line.from_dict(json.loads(text))
                except Exception as exc:
                    raise ConfigError(
                        f"lattice_file {o.lattice_file}: not an Xsuite line: {exc}"
                    ) from None
                for name, knob in o.knobs.items():
                    if name not in line.vars:
                        raise ConfigError(
                            f"knob {name!r} is not a variable of lattice {o.lattice_file}"
                        )
                    line.vars[name] = knob.value
        mass = getattr(xt, PARTICLES[o.particle])
        line.particle_ref = xt.Particles(p0c=self._p0c(), mass0=mass)
        try:
            line.build_tracker()
        except Exception as exc:
            if type(exc).__name__ == "PrebuiltKernelNotFoundError":
                raise SimulationError(
                    "Xsuite has no prebuilt kernel for this lattice's elements; run "
                    "'xsuite-prebuild regenerate' once (or reinstall xsuite)"
                ) from None
            raise
        self._line = line
        self._where = _observation_rows(list(line.element_names), self.observation_points())
        return line

    # ---------------------------------------------------------------- running

    def run(
        self, points: Points, seed: int, *, first_index: int = 0, workdir: Path | None = None
    ) -> RunResult:
        line = self._build()
        outputs = self.outputs()
        n = len(next(iter(points.values())))
        values = {o.name: np.full(n, np.nan) for o in outputs}
        for i in range(n):  # each point is one optics computation and one tracking
            point = {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in points.items()}
            rng = np.random.default_rng([seed, first_index + i])
            for key, value in self._point(line, point, rng).items():
                values[key][i] = value
        return RunResult(
            {
                o.name: values[o.name].astype(o.dtype) if o.dtype == "int8" else values[o.name]
                for o in outputs
            }
        )

    def _point(
        self, line: Any, point: dict[str, Any], rng: np.random.Generator
    ) -> dict[str, float]:
        o = self.opts
        for name in o.knobs:
            line.vars[name] = float(point[name])
        twiss_kw: dict[str, float] = {}
        if not o.periodic:
            twiss_kw = {name[:-1]: float(point[name]) for name in _INIT}
        try:
            with _quiet():
                tw = line.twiss4d(**twiss_kw)
            betx0, bety0 = float(tw.betx[0]), float(tw.bety[0])
            if not (np.isfinite(tw.betx).all() and np.isfinite(tw.bety).all()):
                raise ValueError("non-finite optics")
        except Exception:  # no stable periodic solution: a result, not a failure
            return {"stable": 0.0}
        out: dict[str, float] = {"stable": 1.0}
        if o.periodic:
            out |= {"qx": float(tw.qx), "qy": float(tw.qy)}
        observe = self.observation_points()
        for obs in observe:
            row = tw.rows[self._where[obs][1]]
            out |= {f"betx_{obs}": float(row.betx[0]), f"bety_{obs}": float(row.bety[0]),
                    f"dx_{obs}": float(row.dx[0])}  # fmt: skip
        beta_gamma = float(line.particle_ref.beta0[0] * line.particle_ref.gamma0[0])
        ex, ey = point["emit_x_norm"] / beta_gamma, point["emit_y_norm"] / beta_gamma
        m = o.n_particles
        z = rng.standard_normal((5, m))
        delta = point["sigma_delta"] * z[4]
        alfx0, alfy0 = float(tw.alfx[0]), float(tw.alfy[0])
        x = math.sqrt(ex * betx0) * z[0] + float(tw.dx[0]) * delta
        px = math.sqrt(ex / betx0) * (z[1] - alfx0 * z[0]) + float(tw.dpx[0]) * delta
        y = math.sqrt(ey * bety0) * z[2]
        py = math.sqrt(ey / bety0) * (z[3] - alfy0 * z[2])
        particles = line.build_particles(x=x, px=px, y=y, py=py, delta=delta)
        if o.n_turns > 1:
            line.track(particles, num_turns=o.n_turns - 1)
        start = 0
        for obs in observe:
            stop = self._where[obs][0]
            if stop > start:
                line.track(particles, ele_start=start, ele_stop=stop)
            alive = particles.state > 0
            out |= _beam_moments(particles, alive, beta_gamma, obs)
            start = stop
        if start < len(line.element_names):
            line.track(particles, ele_start=start, num_elements=len(line.element_names) - start)
        out["transmission"] = float(np.mean(particles.state > 0))
        return out


def _observation_rows(names: list[str], observe: list[str]) -> dict[str, tuple[int, str]]:
    """Element index and Twiss-table row of each observation point: ``end`` is the end of the
    line; a name repeated in the line means its first occurrence, ``name::k`` its k-th (from 0),
    as in Xsuite's tables.

    Raises:
        ConfigError: a point that is not in the line, or points out of order along it.
    """
    counts: dict[str, int] = {}
    rows: list[str] = []
    for n in names:
        rows.append(f"{n}::{counts.get(n, 0)}")
        counts[n] = counts.get(n, 0) + 1
    rows = [r if counts[r.partition("::")[0]] > 1 else r.partition("::")[0] for r in rows]
    where: dict[str, tuple[int, str]] = {}
    for obs in observe:
        if obs == "end":
            where[obs] = (len(names), "_end_point")
            continue
        base, _, k = obs.partition("::")
        target = f"{base}::{k or 0}" if counts.get(base, 0) > 1 else base
        if target not in rows:
            raise ConfigError(f"observe: {obs!r} is not an element of the line")
        where[obs] = (rows.index(target), target)
    order = [where[o][0] for o in observe]
    if order != sorted(order):
        raise ConfigError(f"observe: list the points in their order along the line ({observe})")
    return where


def _beam_moments(
    particles: Any, alive: np.ndarray, beta_gamma: float, obs: str
) -> dict[str, float]:
    """rms sizes (m) and normalised rms emittances (m) of the surviving particles."""
    if alive.sum() < 3:
        return {}
    out = {}
    for plane in ("x", "y"):
        q = np.asarray(getattr(particles, plane))[alive]
        p = np.asarray(getattr(particles, "p" + plane))[alive]
        cov = np.cov(q, p)
        out[f"sigma_{plane}_{obs}"] = float(np.sqrt(cov[0, 0]))
        out[f"emit_{plane}_{obs}"] = float(np.sqrt(max(np.linalg.det(cov), 0.0)) * beta_gamma)
    return out


@contextlib.contextmanager
def _quiet() -> Any:
    """Xsuite prints progress lines on stdout and stderr; keep them out of ours."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield
