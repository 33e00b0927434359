"""The seam every simulation code plugs into: :class:`Simulator`.

A simulator is a small class registered under the entry-point group ``twinforge.simulators``
(see :mod:`twinforge.simulation.registry`), so a third-party package adds one without editing
twinforge. Campaigns, ``twinforge simulate``, the catalogue and ``twinforge simulators`` only
ever talk to this interface:

- ``Options``: the simulator's own settings, a pydantic model (unknown keys rejected by name),
  given in a campaign as ``simulator: {name: ..., <options>}``;
- :meth:`~Simulator.parameters`: the inputs it takes (name, unit, bounds, default), or None
  for a code that takes whatever the space defines (the command-line backend);
- :meth:`~Simulator.outputs`: what it returns per point (name, unit, shape);
- :meth:`~Simulator.run`: evaluate a block of points with a seed, in this process;
- ``format``: how a job's results are written, merged and checked (:class:`OutputFormat`):
  showers as CaloChallenge-compatible shower files, anything else as result tables.

The seed is a declared input of every job: the same options, points and seed give the same
outputs. Instances must be cheap to create (heavy set-up happens on the first :meth:`run`,
once per process) and are rebuilt on workers from :meth:`worker_options`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from numpy.typing import NDArray

from twinforge.config import StrictModel
from twinforge.space import Parameter, Points, ResolvedSpace

__all__ = ["NoOptions", "Output", "OutputFormat", "RunResult", "Simulator"]


class NoOptions(StrictModel):
    """A simulator without settings."""


@dataclass(frozen=True)
class Output:
    """One named output per point: ``shape`` () for a scalar, ``(k,)`` for an array."""

    name: str
    unit: str | None = None
    shape: tuple[int, ...] = ()
    dtype: str = "float64"
    description: str = ""

    def describe(self) -> str:
        shape = "" if not self.shape else f" {'x'.join(map(str, self.shape))}"
        return f"{self.name}{shape}" + (f" [{self.unit}]" if self.unit else "")


@dataclass
class RunResult:
    """What :meth:`Simulator.run` returns: output name -> array ``(n_points, *shape)``, and
    per-run records worth keeping (the rendered input deck, the program's log tail)."""

    outputs: dict[str, NDArray[Any]]
    records: dict[str, list[str]] | None = None


class Simulator(ABC):
    """A simulation code behind the campaign seam. Subclasses set the class attributes and
    implement :meth:`parameters`, :meth:`outputs`, :meth:`run` and :meth:`code`."""

    name: ClassVar[str]
    """Registry name (the entry point's), e.g. ``"geant4"``."""
    summary: ClassVar[str]
    """One line for ``twinforge simulators``."""
    Options: ClassVar[type[StrictModel]] = NoOptions
    format: ClassVar[type[OutputFormat]]
    point_noun: ClassVar[str] = "points"
    """What one point is called in messages (``showers`` for a calorimeter)."""

    def __init__(self, options: StrictModel | Mapping[str, Any] | None = None) -> None:
        if options is None or isinstance(options, Mapping):
            options = self.Options.model_validate(dict(options or {}))
        self.options = options

    @abstractmethod
    def parameters(self) -> list[Parameter] | None:
        """The inputs, in the order samplers draw them; None: whatever the space defines."""

    @abstractmethod
    def outputs(self) -> list[Output]:
        """What one point yields."""

    @abstractmethod
    def run(
        self, points: Points, seed: int, *, first_index: int = 0, workdir: Path | None = None
    ) -> RunResult:
        """Evaluate every point (``len`` of any column) with ``seed``, in this process.

        ``first_index`` is the index of the first point in the whole run: a code that seeds
        each point from ``(seed, index)`` then gives the same result however points are
        batched. ``workdir`` is a folder the job may use for its files (None: a temporary
        one). Raises :class:`~twinforge.errors.SimulationError` on failure,
        :class:`~twinforge.errors.JobFailure` for a program that ran and failed.
        """

    @abstractmethod
    def code(self) -> dict[str, str]:
        """The code that runs: ``{"name": ..., "version": ...}`` (the RO-Crate instrument)."""

    def provenance(self) -> dict[str, Any]:
        """JSON-ready description of the set-up, written into every output file."""
        return {"simulator": self.name, "code": self.code()}

    def worker_options(self) -> dict[str, Any]:
        """Self-contained options (files read and inlined) that rebuild this simulator on a
        worker that may not see the config's files; also what a resumed campaign compares."""
        return self.options.model_dump(mode="json")

    def check_space(self, space: ResolvedSpace) -> None:
        """Further checks of a resolved space (e.g. a template's names); ConfigError if bad."""
        return None

    def batch_size(self, n: int) -> int:
        """Points per :meth:`run` call in a one-off ``twinforge simulate`` of ``n`` points."""
        return max(1, -(-n // 50))


class OutputFormat(ABC):
    """How a simulator's results are stored: one file per job, merged into one per campaign."""

    suffix: ClassVar[str] = ".h5"

    @classmethod
    @abstractmethod
    def write(
        cls,
        path: Path,
        simulator: Simulator,
        points: Points,
        result: RunResult,
        provenance: Mapping[str, Any],
        *,
        compression: str = "gzip",
        overwrite: bool = True,
    ) -> int:
        """Write one job's points and results to ``path`` atomically; return the number of
        points."""

    @classmethod
    @abstractmethod
    def merge(
        cls,
        paths: Sequence[Path],
        output: Path,
        provenance: Mapping[str, Any],
        *,
        compression: str = "gzip",
        overwrite: bool = False,
    ) -> int:
        """Join job files (in order) into ``output`` atomically; return the number of points."""

    @classmethod
    @abstractmethod
    def describe(cls, path: Path) -> tuple[int, dict[str, Any]]:
        """(number of points, provenance) of a complete file.

        Raises:
            TwinforgeError (or OSError): not such a file, or not complete.
        """

    @classmethod
    @abstractmethod
    def input_column(cls, path: Path, name: str) -> NDArray[Any]:
        """The input ``name`` of every point of the file (to recognise a job's own file)."""

    @classmethod
    def observables(cls, simulator: Simulator) -> list[Output]:
        """The scalar quantities :meth:`observe` gives (what an adaptive sampler or a
        surrogate can learn): by default the simulator's scalar outputs."""
        return [o for o in simulator.outputs() if o.shape == ()]

    @classmethod
    def observe_result(
        cls, simulator: Simulator, points: Points, result: RunResult
    ) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]], dict[str, NDArray[Any]] | None]:
        """:meth:`observe` of results not written anywhere yet (through a temporary file)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"observed{cls.suffix}"
            cls.write(path, simulator, points, result, simulator.provenance())
            return cls.observe(path)

    @classmethod
    def observe(
        cls, path: Path
    ) -> tuple[dict[str, NDArray[Any]], dict[str, NDArray[Any]], dict[str, NDArray[Any]] | None]:
        """(inputs, observables, their variances or None) of a file, one row per observation.

        Raises:
            ConfigError: the format holds nothing to learn from.
        """
        from twinforge.errors import ConfigError

        raise ConfigError(f"{cls.__name__} files hold no scalar outputs to learn from")
