"""Gaussian-process surrogates (BoTorch on GPyTorch): one exact GP per output.

Each output gets a :class:`botorch.models.SingleTaskGP` (BoTorch's default RBF kernel, one
length scale per dimension with its dimension-scaled prior, over the unit cube the
:class:`~twinforge.surrogate.encoding.SpaceEncoder` maps the space onto; a two-valued category,
such as e-/gamma, is a dimension with the values 0 and 1, on which any stationary kernel
compares for equality) or, where a categorical dimension
has more than two values, a :class:`botorch.models.MixedSingleTaskGP` whose categorical kernel
compares categories for equality. Outputs are standardised. Where every observation carries its
own noise variance (replicated points, a calorimeter point's statistics: ``train_Yvar``) the GP is
heteroscedastic with that fixed noise; otherwise it learns one noise level per output.
Hyper-parameters maximise the exact marginal likelihood from several starting length scales
(``fit_gpytorch_mll``). The outputs together form a :class:`botorch.models.ModelListGP`, so
acquisitions see one multi-output model.

Exact GPs cost O(n^3): a few thousand points at most; the ``ensemble`` surrogate takes more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinforge.config import StrictModel
from twinforge.surrogate.base import Surrogate

__all__ = ["GPOptions", "GPSurrogate"]

log = logging.getLogger(__name__)


class GPOptions(StrictModel):
    """Settings of the ``gp`` surrogate."""

    noise: Literal["auto", "learned", "fixed"] = Field(
        "auto",
        description="auto: the observations' own variances where known (fixed), else learned",
    )
    min_noise: float = Field(
        1e-6, gt=0, description="floor of a fixed noise variance, relative to the output's variance"
    )
    max_points: int = Field(5000, gt=0, description="refuse more points than this (O(n^3))")
    restarts: int = Field(
        3, ge=1, description="fits from different length scales; the best likelihood is kept"
    )


# initial length scales (unit cube) of the restarts after the first (BoTorch's default, which
# favours smooth functions): an oscillating response is otherwise easily taken for noise
_RESTART_LENGTHSCALES = (0.15, 0.4, 0.05)


def _copy_hyperparameters(source: Any, target: Any) -> bool:
    """The kernel, mean and noise hyper-parameters of ``source`` into ``target`` (same
    structure; data-dependent buffers such as the outcome transform's are left alone)."""
    theirs = source.state_dict()
    mine = target.state_dict()
    keys = [k for k in mine if "raw_" in k and not k.endswith("_constraint.lower_bound")
            and not k.endswith("_constraint.upper_bound")]  # fmt: skip
    if not keys or any(k not in theirs or theirs[k].shape != mine[k].shape for k in keys):
        return False
    target.load_state_dict({**mine, **{k: theirs[k].clone() for k in keys}})
    return True


def _fit_restarts(model: Any, restarts: int) -> None:
    """Maximise the marginal likelihood from ``restarts`` starting points; keep the best."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    initial = {k: v.clone() for k, v in model.state_dict().items()}
    best: tuple[float, dict[str, Any]] | None = None
    for attempt in range(restarts):
        model.load_state_dict(initial)
        if attempt:
            scale = _RESTART_LENGTHSCALES[(attempt - 1) % len(_RESTART_LENGTHSCALES)]
            for module in model.modules():
                if hasattr(module, "lengthscale") and module.lengthscale is not None:
                    try:
                        module.lengthscale = torch.full_like(module.lengthscale, scale)
                    except (RuntimeError, AttributeError):
                        continue
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        try:
            fit_gpytorch_mll(mll)
        except Exception as exc:  # a restart that fails to converge is skipped
            log.debug("GP restart %d failed: %s", attempt, exc)
            continue
        model.train()
        with torch.no_grad():
            value = float(mll(model(*model.train_inputs), model.train_targets).sum())
        if best is None or value > best[0]:
            best = (value, {k: v.clone() for k, v in model.state_dict().items()})
    if best is None:
        raise RuntimeError("every GP fit failed")
    model.load_state_dict(best[1])


class GPSurrogate(Surrogate):
    """Exact Gaussian processes, one per output (BoTorch ``ModelListGP``)."""

    name = "gp"
    Options: ClassVar[type[StrictModel]] = GPOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.model: Any = None

    @property
    def opts(self) -> GPOptions:
        assert isinstance(self.options, GPOptions)
        return self.options

    def _build(self, x: NDArray[np.float64], y: NDArray[np.float64],
               yvar: NDArray[np.float64] | None) -> Any:  # fmt: skip
        import torch
        from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
        from botorch.models.transforms.outcome import Standardize

        from twinforge.errors import ConfigError

        if len(x) > self.opts.max_points:
            raise ConfigError(
                f"{len(x)} points are too many for an exact GP (max_points "
                f"{self.opts.max_points}); use the ensemble surrogate"
            )
        if self.opts.noise == "fixed" and yvar is None:
            raise ConfigError(
                "gp noise: fixed needs each observation's variance (replicated points)"
            )
        use_yvar = yvar is not None and self.opts.noise != "learned"
        tx = torch.as_tensor(x, dtype=torch.float64)
        # two categories (e-/gamma) are the 0/1 ends of an ordinary dimension: any stationary
        # kernel over {0, 1} is an exchangeable categorical kernel, and the fit is ~15x faster
        # than MixedSingleTaskGP's; more categories get the categorical kernel
        cat_dims = sorted(c for c, k in self._encoder().categorical.items() if k > 2)
        models = []
        for j in range(y.shape[1]):
            ty = torch.as_tensor(y[:, j : j + 1], dtype=torch.float64)
            kwargs: dict[str, Any] = {"outcome_transform": Standardize(m=1)}
            if use_yvar:
                assert yvar is not None
                floor = self.opts.min_noise * max(float(np.var(y[:, j])), 1e-300)
                kwargs["train_Yvar"] = torch.as_tensor(
                    np.maximum(yvar[:, j : j + 1], floor), dtype=torch.float64
                )
            if cat_dims:
                models.append(MixedSingleTaskGP(tx, ty, cat_dims=cat_dims, **kwargs))
            else:
                models.append(SingleTaskGP(tx, ty, **kwargs))
        return ModelListGP(*models)

    def _fit(self, x: NDArray[np.float64], y: NDArray[np.float64],
             yvar: NDArray[np.float64] | None) -> None:  # fmt: skip
        model = self._build(x, y, yvar)
        previous = getattr(self._warm_start, "model", None)
        for j, sub in enumerate(model.models):
            if previous is not None and _copy_hyperparameters(previous.models[j], sub):
                _fit_restarts(sub, 1)  # from the last fit's optimum: one local refinement
            else:
                _fit_restarts(sub, self.opts.restarts)
        model.eval()
        self.model = model

    def posterior(self, x: Any, observation_noise: bool = False) -> Any:
        return self.model.posterior(x, observation_noise=observation_noise)

    def joint_covariance(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        import torch

        tx = torch.as_tensor(x, dtype=torch.float64)
        with torch.no_grad():
            return np.stack(
                [sub.posterior(tx).mvn.covariance_matrix.numpy() for sub in self.model.models]
            )

    def _predict(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        import torch

        tx = torch.as_tensor(x, dtype=torch.float64)
        with torch.no_grad():
            latent = self.model.posterior(tx)
            observed = self.model.posterior(tx, observation_noise=True)
            mean = latent.mean.numpy()
            var = latent.variance.clamp_min(0).numpy()
            noise = (observed.variance - latent.variance).clamp_min(0).numpy()
        return mean, var, noise

    def _state(self) -> dict[str, NDArray[Any]]:
        return {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}

    def _restore(self, state: Mapping[str, NDArray[Any]]) -> None:
        import torch

        model = self._build(self._train["x"], self._train["y"], self._train.get("yvar"))
        model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        model.eval()
        self.model = model
