"""The surrogate seam: a model of a campaign's scalar outputs over its space, with uncertainty.

A surrogate is a small class registered under the entry-point group ``twinforge.surrogates``
(``gp``: BoTorch Gaussian processes, the default; ``ensemble``: a deep ensemble, for many points
or dimensions). Everything else (the CLI, acquisitions, optimisation) talks to this interface:

- :meth:`Surrogate.fit` on :class:`~twinforge.surrogate.data.Observations` (points, values and,
  where known, each value's own noise variance);
- :meth:`Surrogate.predict`: :class:`Prediction`, the mean and the variance of the *latent*
  function (what more simulations at that point would pin down) and the noise variance a new
  simulation there would add, per output, in the outputs' own units;
- :meth:`Surrogate.posterior`: the BoTorch posterior over encoded inputs, for acquisitions;
- :meth:`Surrogate.save` / :func:`load`: a directory with ``surrogate.json`` (kind, options,
  space, outputs, sources) and ``state.safetensors`` (weights and training data); never pickle.
"""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from twinforge import __version__
from twinforge.config import StrictModel
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.space import Points
from twinforge.surrogate.data import Observations, shrink_variances
from twinforge.surrogate.encoding import SpaceEncoder

__all__ = ["GROUP", "Prediction", "Surrogate", "available", "create", "load"]

GROUP = "twinforge.surrogates"
_META = "surrogate.json"
_STATE = "state.safetensors"


@dataclass
class Prediction:
    """Per output name, ``(n,)`` arrays in the output's units: ``mean``, ``var`` (variance of
    the latent function) and ``noise`` (variance one new simulation adds)."""

    mean: dict[str, NDArray[np.float64]]
    var: dict[str, NDArray[np.float64]]
    noise: dict[str, NDArray[np.float64]]

    def std(self, name: str, *, observed: bool = False) -> NDArray[np.float64]:
        """Standard deviation of the latent function, or of a new observation."""
        v = self.var[name] + (self.noise[name] if observed else 0.0)
        return np.sqrt(np.maximum(v, 0.0))


class Surrogate(ABC):
    """Subclasses set ``name``, ``Options`` and implement the ``_fit``, ``_predict``,
    ``posterior``, ``_state`` and ``_restore`` hooks over encoded inputs ``x (n, d)``."""

    name: ClassVar[str]
    Options: ClassVar[type[StrictModel]]
    min_points: ClassVar[int] = 3

    def __init__(self, options: StrictModel | Mapping[str, Any] | None = None) -> None:
        if options is None or isinstance(options, Mapping):
            options = self.Options.model_validate(dict(options or {}))
        self.options = options
        self.encoder: SpaceEncoder | None = None
        self.outputs: list[str] = []
        self.units: dict[str, str | None] = {}
        self.sources: dict[str, Any] = {}
        self._train: dict[str, NDArray[np.float64]] = {}
        self._warm_start: Surrogate | None = None

    # ------------------------------------------------------------------ public API

    def fit(self, data: Observations, *, warm_start: Surrogate | None = None) -> Surrogate:
        """Fit every output of ``data``; returns self.

        ``warm_start``: a fitted surrogate of the same kind and outputs (the previous fit of a
        growing data set) whose hyper-parameters are the starting point; a surrogate that has
        no such notion ignores it.

        Raises:
            ConfigError: fewer points than the surrogate needs, or fewer than one per
                dimension.
        """
        encoder = SpaceEncoder(data.space)
        n = len(data)
        need = max(self.min_points, encoder.dim + 1)
        if n < need:
            raise ConfigError(
                f"too few points to fit a {self.name} surrogate: {n}, where {encoder.dim} "
                f"dimension(s) need at least {need}"
            )
        self.encoder = encoder
        self.outputs = list(data.values)
        self.units = dict(data.units)
        self.sources = dict(data.sources)
        x = encoder.encode(data.points)
        y = np.column_stack([data.values[k] for k in self.outputs])
        yvar = None
        if data.variances is not None:
            yvar = np.column_stack([np.maximum(data.variances[k], 0.0) for k in self.outputs])
            if not data.exact_variances:
                yvar = np.column_stack([shrink_variances(yvar[:, j], data.replicates)
                                        for j in range(yvar.shape[1])])  # fmt: skip
        self._train = {"x": x, "y": y} | ({"yvar": yvar} if yvar is not None else {})
        same = (
            warm_start is not None
            and warm_start.name == self.name
            and warm_start.outputs == self.outputs
            and warm_start.encoder is not None
            and warm_start.encoder.names == encoder.names
        )
        self._warm_start = warm_start if same else None
        try:
            self._fit(x, y, yvar)
        finally:
            self._warm_start = None
        return self

    def predict(
        self, points: Mapping[str, Any], outputs: Sequence[str] | None = None
    ) -> Prediction:
        """Prediction at ``points`` (name -> values; every dimension of the space).

        Raises:
            ConfigError: a point outside the space or missing a dimension, an output the
                surrogate was not fitted on.
        """
        encoder = self._encoder()
        wanted = self._check_outputs(outputs)
        x = encoder.encode(points)
        mean, var, noise = self._predict(x)
        cols = [self.outputs.index(k) for k in wanted]
        return Prediction(
            mean={k: mean[:, i] for k, i in zip(wanted, cols, strict=True)},
            var={k: var[:, i] for k, i in zip(wanted, cols, strict=True)},
            noise={k: noise[:, i] for k, i in zip(wanted, cols, strict=True)},
        )

    def predict_encoded(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """(mean, latent variance, noise variance), each ``(n, n_outputs)``, at encoded ``x``."""
        return self._predict(np.atleast_2d(np.asarray(x, dtype=np.float64)))

    @property
    def training_points(self) -> Points:
        """The points the surrogate was fitted on."""
        return self._encoder().decode(self._train["x"])

    @property
    def n_train(self) -> int:
        return len(self._train.get("x", ()))

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model directory atomically (a temporary sibling renamed into place)."""
        from safetensors.numpy import save_file

        encoder = self._encoder()
        directory = Path(directory)
        if directory.exists() and not overwrite:
            raise TwinforgeError(f"{directory} exists; choose another path or overwrite it")
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        meta = {
            "format": "twinforge-surrogate",
            "version": 1,
            "kind": self.name,
            "options": self.options.model_dump(mode="json"),
            "encoder": encoder.to_json(),
            "outputs": self.outputs,
            "units": self.units,
            "sources": self.sources,
            "n_train": self.n_train,
            "twinforge": __version__,
        }
        tensors = {f"train.{k}": np.ascontiguousarray(v) for k, v in self._train.items()}
        tensors |= {f"model.{k}": np.ascontiguousarray(v) for k, v in self._state().items()}
        save_file(tensors, str(tmp / _STATE))
        (tmp / _META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            os.replace(directory, old)
            os.replace(tmp, directory)
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
        return directory

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    def _fit(self, x: NDArray[np.float64], y: NDArray[np.float64],
             yvar: NDArray[np.float64] | None) -> None:  # fmt: skip
        """Fit on encoded ``x (n, d)``, ``y (n, m)`` and the noise variances ``yvar (n, m)``."""

    @abstractmethod
    def _predict(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        """(mean, latent variance, noise variance), each ``(n, m)``."""

    @abstractmethod
    def joint_covariance(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n_outputs, n, n)``: covariance of the latent function between the encoded points
        ``x (n, d)``, in the outputs' units (what acquisitions condition on)."""

    @abstractmethod
    def posterior(self, x: Any) -> Any:
        """BoTorch posterior over the outputs at encoded ``x`` (a ``(b, q, d)`` tensor),
        differentiable where the model allows (acquisition functions use it)."""

    @abstractmethod
    def _state(self) -> dict[str, NDArray[Any]]:
        """Weights as arrays (saved with the training data)."""

    @abstractmethod
    def _restore(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Rebuild the fitted model from ``self._train`` and ``state`` (no refitting)."""

    # ------------------------------------------------------------------ helpers

    def _encoder(self) -> SpaceEncoder:
        if self.encoder is None:
            raise TwinforgeError(f"the {self.name} surrogate is not fitted yet")
        return self.encoder

    def _check_outputs(self, outputs: Sequence[str] | None) -> list[str]:
        if outputs is None:
            return list(self.outputs)
        for name in outputs:
            if name not in self.outputs:
                raise ConfigError(
                    f"the surrogate was not fitted on output {name!r}; it has "
                    f"{', '.join(self.outputs)}"
                )
        return list(outputs)


def available() -> dict[str, EntryPoint]:
    """Installed surrogates by name (not imported)."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


@cache
def _class(name: str) -> type[Surrogate]:
    found = available()
    if name not in found:
        raise ConfigError(
            f"unknown surrogate {name!r}; installed: {', '.join(found) or 'none'} "
            "(a package adds one through the 'twinforge.surrogates' entry points)"
        )
    cls = found[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Surrogate)):
        raise ConfigError(f"surrogate {name!r} ({found[name].value}) is not a Surrogate")
    return cls


def create(name: str, options: Mapping[str, Any] | None = None) -> Surrogate:
    """An unfitted surrogate ``name`` with ``options`` (validated by its model).

    Raises:
        ConfigError: unknown surrogate or invalid options.
    """
    from twinforge.config import validate_config

    cls = _class(name)
    return cls(validate_config(cls.Options, dict(options or {}), f"surrogate {name}"))


def load(directory: str | Path) -> Surrogate:
    """The surrogate saved in ``directory`` (no pickle: JSON and safetensors).

    Raises:
        TwinforgeError: not a surrogate directory, or its files do not match.
    """
    from safetensors.numpy import load_file

    directory = Path(directory)
    meta_path = directory / _META
    if not meta_path.is_file() or not (directory / _STATE).is_file():
        raise TwinforgeError(f"{directory}: not a surrogate directory (no {_META} and {_STATE})")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as exc:
        raise TwinforgeError(f"{meta_path}: not valid JSON ({exc})") from None
    if meta.get("format") != "twinforge-surrogate":
        raise TwinforgeError(f"{meta_path}: not a twinforge surrogate")
    model = create(meta["kind"], meta.get("options"))
    try:
        tensors = load_file(str(directory / _STATE))
    except Exception as exc:  # safetensors raises its own error types
        raise TwinforgeError(f"{directory / _STATE}: cannot be read ({exc})") from None
    model.encoder = SpaceEncoder.from_json(meta["encoder"])
    model.outputs = list(meta["outputs"])
    model.units = dict(meta.get("units", {}))
    model.sources = dict(meta.get("sources", {}))
    model._train = {k[6:]: v for k, v in tensors.items() if k.startswith("train.")}
    model._restore({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model
