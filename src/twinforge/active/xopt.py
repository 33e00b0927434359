"""Xopt, both ways (``pip install twinforge[xopt]``).

- :class:`TwinforgeXoptGenerator` is twinforge's :class:`SurrogateGenerator` as an Xopt
  generator: ``Xopt(generator=TwinforgeXoptGenerator(vocs=vocs, config={...}),
  evaluator=Evaluator(function=f))`` then ``X.step()`` / ``X.run()``.
- :func:`xopt_generator` builds any Xopt generator by its registry name
  (``latin_hypercube``, ``expected_improvement``, ``bayesian_exploration``, ...): they follow
  gest-api's suggest / ingest, so an adaptive twinforge campaign runs them like its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from twinforge.active.config import ActiveConfig
from twinforge.active.generator import SurrogateGenerator
from twinforge.errors import ConfigError

try:
    import pandas as pd
    from pydantic import Field, PrivateAttr
    from xopt.generator import Generator as _XoptGenerator
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        f"the Xopt bridge needs Xopt: pip install 'twinforge[xopt]' ({exc})"
    ) from None

__all__ = ["TwinforgeXoptGenerator", "xopt_generator"]


class TwinforgeXoptGenerator(_XoptGenerator):
    """twinforge's surrogate-based generator inside Xopt (its config: :class:`ActiveConfig`).

    Xopt evaluates every point of a step before the next one, so the points suggested in a
    step are all ingested at its end (matched by order, without ``"_id"``, which Xopt does
    not carry)."""

    name: ClassVar[str] = "twinforge"
    supports_batch_generation: bool = True
    supports_single_objective: bool = True
    supports_constraints: bool = True
    supports_discrete_variables: bool = True
    config: dict[str, Any] = Field(default_factory=dict, description="ActiveConfig fields")
    _inner: SurrogateGenerator | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        self._inner = SurrogateGenerator(self.vocs, ActiveConfig(**self.config))

    def generate(self, n_candidates: int) -> list[dict[str, Any]]:
        assert self._inner is not None
        points = self._inner.suggest(n_candidates)
        return [{k: v for k, v in p.items() if k != "_id"} for p in points]

    def add_data(self, new_data: pd.DataFrame) -> None:
        super().add_data(new_data)
        assert self._inner is not None
        self._inner.pending.clear()  # every suggested point of the step is in new_data
        names = [*self._inner.space.names, *self._inner.outputs]
        records = new_data.to_dict("records")
        for r in records:
            r.pop("_id", None)
            if r.get("xopt_error"):
                for k in self._inner.outputs:
                    r[k] = None
        self._inner.ingest([{k: r.get(k) for k in names} for r in records])

    @property
    def surrogate(self) -> Any:
        """The fitted twinforge surrogate (None before enough data)."""
        assert self._inner is not None
        return self._inner.fit()


@contextlib.contextmanager
def _torch_default_dtype_kept() -> Iterator[None]:
    """Importing Xopt's Bayesian generators sets torch's *global* default dtype to float64
    (``xopt.generators.bayesian``), which would break every float32 model trained or run
    later in the same process: put it back."""
    import torch

    dtype = torch.get_default_dtype()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)


def xopt_generator(name: str, vocs: Any, options: Mapping[str, Any] | None = None) -> Any:
    """The Xopt generator ``name`` for ``vocs`` (a gest-api generator: suggest / ingest).

    Raises:
        ConfigError: no such generator, or its options or the VOCS do not suit it.
    """
    from xopt.generators import get_generator, list_available_generators

    with _torch_default_dtype_kept():
        try:
            cls = get_generator(name)
        except Exception:
            known = ", ".join(sorted(list_available_generators()))
            raise ConfigError(f"unknown Xopt generator {name!r}; available: {known}") from None
    try:
        return cls(vocs=vocs, **dict(options or {}))
    except Exception as exc:  # pydantic and VOCS errors
        first = str(exc).strip().splitlines()
        raise ConfigError(f"Xopt generator {name}: {' '.join(first[:3])}") from None
