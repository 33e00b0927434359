"""Acquisitions: which candidate points to simulate next, given a surrogate and the points
already running.

Two families, chosen by what the campaign wants:

- **learning the whole response** (the VOCS objective ``EXPLORE``):
  ``nipv``, integrated posterior variance reduction: the candidate whose simulation would
  shrink the latent variance integrated over the space (Monte Carlo points) the most; and
  ``variance``, maximum posterior variance. Both condition on the pending points first (the
  posterior variance of a GP does not depend on the values still to come, so this is exact
  for a GP with its hyper-parameters held), then pick greedily, one point at a time, each
  pick joining the pending ones. They work from :meth:`Surrogate.joint_covariance` alone, so
  with any surrogate; outputs are weighted by the inverse of their variance over the training
  points, so no output dominates by its units;
- **optimisation** (``MINIMIZE`` / ``MAXIMIZE``, with ``LESS_THAN`` / ``GREATER_THAN``
  constraints on other outputs): ``ei``, BoTorch's noisy log expected improvement
  (qLogNEI), and ``ucb``, upper confidence bound, with the pending points as
  ``X_pending``. These need a GP surrogate.

Candidates are a set of points of the space (its constraints applied), encoded; the
acquisitions only rank them. Nothing here knows what the outputs mean: the same code picks
where to simulate a calorimeter response or where a generative model is worst.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from twinforge.errors import ConfigError
from twinforge.surrogate.base import Surrogate

__all__ = ["ACQUISITIONS", "Acquisition", "integrated_variance", "select"]

Acquisition = Literal["nipv", "variance", "ei", "ucb"]
ACQUISITIONS: tuple[str, ...] = ("nipv", "variance", "ei", "ucb")
_JITTER = 1e-10


def _weights(model: Surrogate, outputs: Sequence[str]) -> NDArray[np.float64]:
    y = model._train["y"][:, [model.outputs.index(k) for k in outputs]]
    return 1.0 / np.maximum(y.var(axis=0), 1e-300)


def _conditioned(
    cov: NDArray[np.float64], given: NDArray[np.int64], noise: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``cov (m, n, n)`` conditioned on noisy observations at the indices ``given``."""
    if len(given) == 0:
        return cov
    k_gg = cov[:, given][:, :, given] + np.stack([np.diag(noise[given, j]) for j in
                                                  range(cov.shape[0])])  # fmt: skip
    k_g = cov[:, given, :]  # (m, g, n)
    k_gg += (
        _JITTER
        * np.eye(len(given))[None]
        * np.maximum(np.trace(k_gg, axis1=1, axis2=2)[:, None, None] / len(given), 1e-300)
    )
    solved = np.linalg.solve(k_gg, k_g)  # (m, g, n)
    return cov - np.einsum("mgi,mgj->mij", k_g, solved)


def select(
    model: Surrogate,
    candidates: NDArray[np.float64],
    q: int,
    *,
    acquisition: Acquisition = "nipv",
    outputs: Sequence[str] | None = None,
    pending: NDArray[np.float64] | None = None,
    mc_points: NDArray[np.float64] | None = None,
    objective: tuple[str, Literal["minimize", "maximize"]] | None = None,
    constraints: Mapping[str, tuple[Literal["LESS_THAN", "GREATER_THAN"], float]] | None = None,
    beta: float = 4.0,
) -> NDArray[np.int64]:
    """Indices of the ``q`` candidates (encoded, ``(n, d)``) to simulate next, in order.

    ``outputs``: what to learn (default: every output of the surrogate). ``pending``:
    encoded points already running. ``mc_points``: where the variance is integrated (nipv;
    default: the candidates). ``objective``/``constraints``: for ``ei`` and ``ucb``.

    Raises:
        ConfigError: an unknown acquisition or output, an optimisation acquisition without an
            objective or with a surrogate that is not a GP, more points asked than candidates.
    """
    if acquisition not in ACQUISITIONS:
        raise ConfigError(f"unknown acquisition {acquisition!r}; one of {', '.join(ACQUISITIONS)}")
    if q > len(candidates):
        raise ConfigError(f"{q} points asked of {len(candidates)} candidates")
    pending = np.zeros((0, candidates.shape[1])) if pending is None else np.atleast_2d(pending)
    if acquisition in ("ei", "ucb"):
        if objective is None:
            raise ConfigError(f"acquisition {acquisition} needs an objective (minimize/maximize)")
        return _botorch_select(model, candidates, q, acquisition, pending, objective,
                               constraints or {}, beta)  # fmt: skip
    wanted = model._check_outputs(outputs)
    cols = [model.outputs.index(k) for k in wanted]
    w = _weights(model, wanted)
    mc = candidates if mc_points is None else mc_points
    x = np.concatenate([pending, candidates, mc if acquisition == "nipv" else mc[:0]])
    cov = model.joint_covariance(x)[cols]
    _, _, noise = model.predict_encoded(x)
    noise = noise[:, cols]
    p, n = len(pending), len(candidates)
    cand = np.arange(p, p + n)
    chosen: list[int] = []
    for _ in range(q):
        given = np.asarray(list(range(p)) + [p + c for c in chosen], dtype=np.int64)
        post = _conditioned(cov, given, noise)
        var_c = np.einsum("mii->mi", post[:, cand][:, :, cand])  # (m, n)
        if acquisition == "variance":
            score = (w[:, None] * var_c).sum(axis=0)
        else:
            mc_idx = np.arange(p + n, len(x))
            cross = post[:, mc_idx][:, :, cand]  # (m, mc, n)
            denom = var_c + noise[cand].T + _JITTER
            score = (w[:, None] * (cross**2).sum(axis=1) / denom).sum(axis=0) / len(mc_idx)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return np.asarray(chosen, dtype=np.int64)


def integrated_variance(
    model: Surrogate, mc_points: NDArray[np.float64], outputs: Sequence[str] | None = None
) -> dict[str, float]:
    """Per output, the RMS latent standard deviation over ``mc_points`` (encoded): the
    surrogate's own estimate of its RMSE over the space (a stop rule's measure)."""
    wanted = model._check_outputs(outputs)
    _, var, _ = model.predict_encoded(mc_points)
    return {k: float(np.sqrt(np.mean(var[:, model.outputs.index(k)]))) for k in wanted}


def _botorch_select(
    model: Surrogate,
    candidates: NDArray[np.float64],
    q: int,
    acquisition: str,
    pending: NDArray[np.float64],
    objective: tuple[str, str],
    constraints: Mapping[str, tuple[str, float]],
    beta: float,
) -> NDArray[np.int64]:
    import torch
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement
    from botorch.acquisition.monte_carlo import qUpperConfidenceBound
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.sampling.normal import SobolQMCNormalSampler

    botorch_model = getattr(model, "model", None)
    if botorch_model is None or model.name != "gp":
        raise ConfigError(f"acquisition {acquisition} needs the gp surrogate, not {model.name}")
    name, goal = objective
    model._check_outputs([name, *constraints])
    col = model.outputs.index(name)
    sign = -1.0 if goal.lower() in ("minimize", "minimise") else 1.0
    mc_objective = GenericMCObjective(lambda y, X=None: sign * y[..., col])
    cons = []
    for out, (kind, bound) in constraints.items():
        j = model.outputs.index(out)
        if kind == "LESS_THAN":
            cons.append(lambda z, j=j, b=bound: z[..., j] - b)
        else:
            cons.append(lambda z, j=j, b=bound: b - z[..., j])
    tc = torch.as_tensor(candidates, dtype=torch.float64).unsqueeze(1)
    chosen: list[int] = []
    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=0)
    for _ in range(q):
        x_pending = torch.as_tensor(
            np.concatenate([pending, candidates[chosen]]) if chosen else pending,
            dtype=torch.float64,
        )
        x_pending_arg: Any = x_pending if len(x_pending) else None
        if acquisition == "ei":
            acq = qLogNoisyExpectedImprovement(
                botorch_model,
                X_baseline=torch.as_tensor(model._train["x"], dtype=torch.float64),
                objective=mc_objective,
                constraints=cons or None,
                X_pending=x_pending_arg,
                sampler=sampler,
                prune_baseline=True,
            )
        else:
            acq = qUpperConfidenceBound(
                botorch_model, beta=beta, objective=mc_objective, X_pending=x_pending_arg,
                sampler=sampler,
            )  # fmt: skip
        with torch.no_grad():
            values = torch.cat([acq(chunk) for chunk in tc.split(256)]).numpy()
        values[chosen] = -np.inf
        chosen.append(int(np.argmax(values)))
    return np.asarray(chosen, dtype=np.int64)
