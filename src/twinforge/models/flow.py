"""Conditional normalizing flow, the CaloFlow / CaloINN family, built with zuko.

Two flows, trained jointly on the ``layers`` features of
:class:`~twinforge.models.transforms.ShowerTransform` (``[layer energies (n_layers), voxel
fractions within each layer (V)]``, standardised):

1. the *energy flow* models the ``n_layers`` layer-energy features given the conditions ``c``;
   fully autoregressive by default (few features; its inverse, the sampling direction, takes
   ``n_layers`` network passes per transform, all unrolled in an ONNX export);
2. the *shape flow* models the ``V`` shape features given ``(c, layer features)``. By default
   its transforms are couplings (``shape_passes: 2``, CaloINN style): the inverse, which is the
   sampling direction, takes two network passes per transform instead of ``V``.

The loss is the negative log-likelihood of both (per shower, summed), of the features plus a
little Gaussian dequantisation noise (``noise``, in standardised units) so that voxels that are
(almost) always empty do not collapse the density. Sampling is deterministic given the noise:
``decode`` applies the inverse transforms of both flows, the path ONNX export traces.

Config (``model.config`` of the training YAML):

- ``n_layers``: layer-energy features at the front of ``x``; filled by training from the
  transform (``ShowerTransform.n_layer_features``), so users leave it out;
- ``energy_flow`` / ``shape_flow``: ``"nsf"`` (rational-quadratic splines) or ``"maf"`` (affine);
- ``energy_transforms`` / ``shape_transforms``: number of transforms;
- ``energy_hidden`` / ``shape_hidden``: hidden widths of the masked MLPs;
- ``energy_passes`` / ``shape_passes``: passes of the inverse, 2 for couplings, ``null`` for
  fully autoregressive (``n_layers`` or ``V`` sequential passes when sampling);
- ``bins``: spline bins of the ``"nsf"`` flows;
- ``noise``: standard deviation of the dequantisation noise of the loss;
- ``shape_marginal_bins``: bins of an unconditional element-wise spline on the data side of the
  shape flow (0: none). Each voxel feature gets its own monotonic rational-quadratic spline on
  ``[-marginal_bound, marginal_bound]`` (identity outside), initialised to the identity, for
  ``3 * bins`` parameters per voxel. Affine couplings alone cannot shape a voxel's two-peaked
  marginal (the dequantisation noise, a gap, then the deposits of a few hundred keV of charged
  particles crossing the layer); on the siw detector the spline lowered the best validation NLL
  by 4 % (docs/benchmarks.md). The spurious near-threshold voxels are removed by the
  transform's ``noise_edge``, not by the spline;
- ``marginal_bound``: the spline's half range, in standardised feature units.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import torch
from zuko.distributions import DiagNormal
from zuko.flows import (
    Flow,
    MaskedAutoregressiveTransform,
    UnconditionalDistribution,
    UnconditionalTransform,
)
from zuko.transforms import MonotonicRQSTransform

from twinforge.models.base import GenerativeModel

__all__ = ["DEFAULTS", "CaloFlow"]

DEFAULTS: dict[str, Any] = {
    "n_layers": None,
    "energy_flow": "nsf",
    "energy_transforms": 3,
    "energy_hidden": [64, 64],
    "energy_passes": None,
    "shape_flow": "maf",
    "shape_transforms": 4,
    "shape_hidden": [256, 256],
    "shape_passes": 2,
    "bins": 8,
    "noise": 0.01,
    "shape_marginal_bins": 0,
    "marginal_bound": 10.0,
}

_KINDS = ("nsf", "maf")


def _orders(features: int, transforms: int, *, shuffle: bool, seed: int) -> list[torch.Tensor]:
    """Feature orders of the transforms, in pairs ``(order, complement)``.

    The complement ``features - 1 - order`` reverses which features condition which, so in a
    coupling pair every feature is transformed once. ``shuffle`` draws each pair's order from a
    fixed seed (couplings then mix distant voxels); the orders are also saved with the weights.
    """
    generator = torch.Generator().manual_seed(seed)
    orders = []
    for i in range(transforms):
        if i % 2 == 0:
            base = (
                torch.randperm(features, generator=generator) if shuffle else torch.arange(features)
            )
            orders.append(base)
        else:
            orders.append(features - 1 - orders[-1])
    return orders


def _passes(value: Any) -> int | None:
    return None if value is None else int(value)


def _flow(
    kind: str,
    features: int,
    context: int,
    *,
    transforms: int,
    hidden: list[int],
    passes: int | None,
    bins: int,
    shuffle: bool,
    marginal_bins: int = 0,
    marginal_bound: float = 10.0,
) -> Flow:
    """A zuko flow of masked autoregressive transforms over a standard normal base.

    ``marginal_bins > 0`` puts an unconditional element-wise spline (identity at initialisation)
    first, on the data side.
    """
    univariate: dict[str, Any] = {}
    if kind == "nsf":
        univariate = {
            "univariate": partial(MonotonicRQSTransform, slope=1e-3),
            "shapes": [(bins,), (bins,), (bins - 1,)],
        }
    orders = _orders(features, transforms, shuffle=shuffle, seed=features)
    layers = [
        MaskedAutoregressiveTransform(
            features=features,
            context=context,
            passes=passes,
            order=order,
            hidden_features=list(hidden),
            **univariate,
        )
        for order in orders
    ]
    if marginal_bins > 0:
        zeros = partial(torch.zeros, features)
        spline = UnconditionalTransform(
            MonotonicRQSTransform,
            zeros(marginal_bins), zeros(marginal_bins), zeros(marginal_bins - 1),
            bound=marginal_bound, slope=1e-3,
        )  # fmt: skip
        layers = [spline, *layers]
    base = UnconditionalDistribution(
        DiagNormal, loc=torch.zeros(features), scale=torch.ones(features), buffer=True
    )
    return Flow(layers, base)


class CaloFlow(GenerativeModel):
    """Energy flow ``p(layer energies | c)`` and shape flow ``p(shape | c, layer energies)``.

    ``n_voxels`` is the feature length ``n_layers + V`` of the ``layers`` transform; the config
    (see the module docstring) must give ``n_layers``.
    """

    family: ClassVar[str] = "flow"

    def __init__(self, config: dict[str, Any], n_voxels: int, n_conditions: int) -> None:
        unknown = set(config) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown flow option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        super().__init__({**DEFAULTS, **config}, n_voxels, n_conditions)
        cfg = self.config
        if cfg["n_layers"] is None:
            raise ValueError("n_layers is required (training fills it from the 'layers' transform)")
        n_layers = int(cfg["n_layers"])
        if not 1 <= n_layers < n_voxels:
            raise ValueError(f"n_layers must be in [1, {n_voxels - 1}], got {n_layers}")
        for key in ("energy_flow", "shape_flow"):
            if cfg[key] not in _KINDS:
                raise ValueError(f"{key} must be one of {_KINDS}, got {cfg[key]!r}")
        for key in ("energy_transforms", "shape_transforms", "bins"):
            if int(cfg[key]) < 1:
                raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
        marginal_bins = int(cfg["shape_marginal_bins"])
        if marginal_bins < 0 or marginal_bins == 1:
            raise ValueError(f"shape_marginal_bins must be 0 or >= 2, got {marginal_bins}")
        if float(cfg["marginal_bound"]) <= 0:
            raise ValueError(f"marginal_bound must be > 0, got {cfg['marginal_bound']}")
        for key in ("energy_passes", "shape_passes"):
            if cfg[key] is not None and int(cfg[key]) < 1:
                raise ValueError(f"{key} must be >= 1 or null, got {cfg[key]}")
        if float(cfg["noise"]) < 0:
            raise ValueError(f"noise must be >= 0, got {cfg['noise']}")
        self.n_layers = n_layers
        self.n_shape = n_voxels - n_layers
        self.energy_flow = _flow(
            cfg["energy_flow"], n_layers, n_conditions,
            transforms=int(cfg["energy_transforms"]), hidden=cfg["energy_hidden"],
            passes=_passes(cfg["energy_passes"]), bins=int(cfg["bins"]), shuffle=False,
        )  # fmt: skip
        self.shape_flow = _flow(
            cfg["shape_flow"], self.n_shape, n_conditions + n_layers,
            transforms=int(cfg["shape_transforms"]), hidden=cfg["shape_hidden"],
            passes=_passes(cfg["shape_passes"]),
            bins=int(cfg["bins"]), shuffle=True,
            marginal_bins=marginal_bins,
            marginal_bound=float(cfg["marginal_bound"]),
        )  # fmt: skip

    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        noise = float(self.config["noise"])
        if noise > 0:
            x = x + noise * torch.randn_like(x)
        energy, shape = x[:, : self.n_layers], x[:, self.n_layers :]
        nll_energy = -self.energy_flow(c).log_prob(energy).mean()
        nll_shape = -self.shape_flow(torch.cat([c, energy], dim=1)).log_prob(shape).mean()
        return {"loss": nll_energy + nll_shape, "nll_energy": nll_energy, "nll_shape": nll_shape}

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.n_voxels, generator=generator)

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        energy = self.energy_flow.transform(c).inv(noise[:, : self.n_layers])
        context = torch.cat([c, energy], dim=1)
        shape = self.shape_flow.transform(context).inv(noise[:, self.n_layers :])
        return torch.cat([energy, shape], dim=1)
