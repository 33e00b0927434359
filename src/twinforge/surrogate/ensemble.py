"""A deep ensemble (Lakshminarayanan et al. 2017): for more points or dimensions than a GP takes.

``members`` small MLPs, each trained from its own initialisation on the Gaussian negative
log-likelihood: it predicts a mean and a noise variance per output. Where observations carry
their own variance, that is added to the predicted noise in the likelihood (the network then
learns only what is left). The ensemble's prediction is the members' mean; the variance of the
latent function is the members' spread (epistemic), the noise the members' mean predicted
variance (aleatoric). Each member sees a random ``bag_fraction`` of the points; the points it
did not see calibrate the spread (a few members' spread is too small: it is scaled up until
out-of-bag residuals have the predicted variance). Categorical dimensions are one-hot encoded;
outputs standardised.

Its :meth:`posterior` is a BoTorch ``EnsemblePosterior`` (the members as samples), so the
variance-based acquisitions work with it; integrated-variance acquisitions, which need a GP's
fantasies, do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from twinforge.config import StrictModel
from twinforge.surrogate.base import Surrogate

__all__ = ["EnsembleOptions", "EnsembleSurrogate"]


class EnsembleOptions(StrictModel):
    """Settings of the ``ensemble`` surrogate."""

    members: int = Field(5, ge=2, description="networks in the ensemble")
    hidden: int = Field(64, gt=0, description="width of each hidden layer")
    layers: int = Field(2, ge=1, description="hidden layers")
    steps: int = Field(3000, gt=0, description="full-batch Adam steps per member")
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    bag_fraction: float = Field(
        0.8, gt=0, le=1, description="share of the points each member is trained on"
    )
    seed: int = Field(0, ge=0)


class EnsembleSurrogate(Surrogate):
    """A deep ensemble of Gaussian MLPs."""

    name = "ensemble"
    Options: ClassVar[type[StrictModel]] = EnsembleOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.nets: list[Any] = []
        self._scale: dict[str, NDArray[np.float64]] = {}

    @property
    def opts(self) -> EnsembleOptions:
        assert isinstance(self.options, EnsembleOptions)
        return self.options

    # ------------------------------------------------------------------ networks

    def _features(self, x: Any) -> Any:
        """Encoded ``(..., d)`` tensor -> network inputs (categories one-hot, others as-is)."""
        import torch

        cats = self._encoder().categorical
        cols = []
        for j in range(x.shape[-1]):
            if j in cats:
                index = x[..., j].round().long().clamp(0, cats[j] - 1)
                cols.append(torch.nn.functional.one_hot(index, cats[j]).to(x.dtype))
            else:
                cols.append(x[..., j : j + 1] * 2 - 1)
        return torch.cat(cols, dim=-1)

    def _make_nets(self, n_in: int, n_out: int) -> list[Any]:
        import torch

        o = self.opts
        nets = []
        for member in range(o.members):
            torch.manual_seed(o.seed * 1000 + member)
            layers: list[Any] = []
            width = n_in
            for _ in range(o.layers):
                layers += [torch.nn.Linear(width, o.hidden), torch.nn.SiLU()]
                width = o.hidden
            layers.append(torch.nn.Linear(width, 2 * n_out))
            nets.append(torch.nn.Sequential(*layers).double())
        return nets

    def _raw(self, x: Any) -> tuple[Any, Any]:
        """Per member (s, ..., m): standardised mean and noise variance."""
        import torch

        feats = self._features(x)
        outs = torch.stack([net(feats) for net in self.nets])
        m = outs.shape[-1] // 2
        mean, raw_var = outs[..., :m], outs[..., m:]
        return mean, torch.nn.functional.softplus(raw_var) + 1e-6

    def _fit(self, x: NDArray[np.float64], y: NDArray[np.float64],
             yvar: NDArray[np.float64] | None) -> None:  # fmt: skip
        import torch

        mu, sd = y.mean(axis=0), y.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        self._scale = {"mu": mu, "sd": sd}
        tx = torch.as_tensor(x)
        ty = torch.as_tensor((y - mu) / sd)
        tvar = torch.as_tensor(yvar / sd**2) if yvar is not None else torch.zeros_like(ty)
        self.nets = self._make_nets(self._features(tx).shape[-1], y.shape[1])
        o = self.opts
        rng = np.random.default_rng(o.seed)
        n = len(x)
        bags = [rng.random(n) < o.bag_fraction for _ in self.nets]
        feats = self._features(tx)
        for net, bag in zip(self.nets, bags, strict=True):
            keep = torch.as_tensor(bag)
            opt = torch.optim.AdamW(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, o.steps)
            for _ in range(o.steps):
                out = net(feats[keep])
                m = out.shape[-1] // 2
                var = torch.nn.functional.softplus(out[:, m:]) + 1e-6 + tvar[keep]
                loss = 0.5 * (torch.log(var) + (ty[keep] - out[:, :m]) ** 2 / var).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            net.eval()
        self._scale["inflate"] = self._calibrate(feats, ty.numpy(), tvar.numpy(), bags)

    def _calibrate(self, feats: Any, y: NDArray[np.float64], yvar: NDArray[np.float64],
                   bags: list[NDArray[np.bool_]]) -> NDArray[np.float64]:  # fmt: skip
        """Factor (per output, >= 1) on the members' spread so that out-of-bag residuals have
        the variance the ensemble predicts (the spread of a few members is too small)."""
        import torch

        with torch.no_grad():
            outs = torch.stack([net(feats) for net in self.nets]).numpy()
        m = outs.shape[-1] // 2
        means = outs[..., :m]
        noise = np.log1p(np.exp(outs[..., m:])).mean(axis=0) + 1e-6 + yvar
        out_of_bag = ~np.stack(bags)  # (s, n)
        seen = out_of_bag.any(axis=0)
        if seen.sum() < 3:
            return np.ones(m)
        w = out_of_bag[..., None].astype(float)
        oob_mean = (means * w).sum(axis=0) / np.maximum(w.sum(axis=0), 1)
        resid2 = ((y - oob_mean) ** 2)[seen]
        spread = means.var(axis=0, ddof=1)[seen]
        # robust: the median of r^2 / variance is 0.455 (chi^2 with 1 dof) when calibrated
        excess = np.maximum(resid2 - noise[seen], 0.0) / np.maximum(spread, 1e-12)
        return np.maximum(1.0, np.median(excess, axis=0) / 0.455)

    def posterior(self, x: Any) -> Any:
        """``EnsemblePosterior`` with the members as samples, ``(b, s, q, m)`` in output units."""
        import torch
        from botorch.posteriors.ensemble import EnsemblePosterior

        mean, _ = self._raw(x)
        mu = torch.as_tensor(self._scale["mu"])
        sd = torch.as_tensor(self._scale["sd"])
        values = mean * sd + mu  # (s, ..., q, m)
        values = values.movedim(0, -3) if values.dim() > 3 else values
        return EnsemblePosterior(values)

    def joint_covariance(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        import torch

        with torch.no_grad():
            mean, _ = self._raw(torch.as_tensor(x))
        members = mean.numpy() * self._scale["sd"] + self._scale["mu"]  # (s, n, m)
        dev = members - members.mean(axis=0)
        cov = np.einsum("sim,sjm->mij", dev, dev) / (len(members) - 1)
        return cov * self._scale["inflate"][:, None, None]

    def _predict(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        import torch

        with torch.no_grad():
            mean, noise = self._raw(torch.as_tensor(x))
        sd = self._scale["sd"]
        means = mean.numpy() * sd + self._scale["mu"]
        return (
            means.mean(axis=0),
            means.var(axis=0, ddof=1) * self._scale["inflate"],
            noise.numpy().mean(axis=0) * sd**2,
        )

    def _state(self) -> dict[str, NDArray[Any]]:
        state = {f"scale.{k}": v for k, v in self._scale.items()}
        for i, net in enumerate(self.nets):
            state |= {f"net{i}.{k}": v.detach().numpy() for k, v in net.state_dict().items()}
        return state

    def _restore(self, state: Mapping[str, NDArray[Any]]) -> None:
        import torch

        self._scale = {k[6:]: np.asarray(v) for k, v in state.items() if k.startswith("scale.")}
        x = torch.as_tensor(self._train["x"])
        self.nets = self._make_nets(self._features(x).shape[-1], self._train["y"].shape[1])
        for i, net in enumerate(self.nets):
            prefix = f"net{i}."
            net.load_state_dict(
                {
                    k[len(prefix) :]: torch.as_tensor(v)
                    for k, v in state.items()
                    if k.startswith(prefix)
                }
            )
            net.eval()
