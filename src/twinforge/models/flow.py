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
- ``marginal_bound``: the spline's half range, in standardised feature units;
- ``shape_layerwise``: one shape flow shared by all layers instead of one over all ``V``
  features (iCaloFlow style). It models the ``m = V / n_layers`` features of one layer given
  ``(c, all layer features, one-hot layer index, the layer's own energy feature, the previous
  layer's shape features)``, so a shower is ``n_layers`` training rows (teacher forcing: the
  previous layer is the data's) and the network is sized by ``m``, not ``V``: fewer
  parameters, ``n_layers`` times more rows to learn them from, and every layer sees the one
  before it. Sampling runs the layers in order (``n_layers`` sequential inverses, unrolled in
  an ONNX export). Needs layers of equal voxel count (regular readouts, CaloChallenge
  datasets 2 and 3). ``shape_marginal_bins`` then gives each (layer, voxel) its own spline.
  With ``shape_flow: "nsf"`` the layer-wise couplings are rational-quadratic splines: a voxel's
  two-peaked distribution given its context (dequantisation noise, a gap, deposits), which
  affine couplings smear into the gap and into a tail of voxels ten times too hot, comes out
  right, and the low-level classifiers on the siw detector drop from 0.75 / 0.95 (suite
  default / converged) to 0.63 / 0.79 (docs/benchmarks.md). On a whole shower the spline
  couplings' networks would be too large (6480 features x 23 spline parameters per output).
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, StrictBool, field_validator
from torch.distributions import Transform
from zuko.distributions import DiagNormal
from zuko.flows import (
    Flow,
    LazyTransform,
    MaskedAutoregressiveTransform,
    UnconditionalDistribution,
    UnconditionalTransform,
)
from zuko.transforms import DependentTransform, MonotonicRQSTransform

from twinforge.errors import ConfigError
from twinforge.models.base import (
    Call,
    DataFacts,
    DecodeProgram,
    FamilyConfig,
    GenerativeModel,
    Repeat,
    with_layer_count,
)

__all__ = ["CaloFlow", "FlowConfig"]

FlowKind = Literal["nsf", "maf"]


class FlowConfig(FamilyConfig):
    """Options of the ``flow`` family (see the module docstring)."""

    n_layers: PositiveInt | None = Field(
        None, description="layer-energy features; training fills it from the 'layers' transform"
    )
    energy_flow: FlowKind = "nsf"
    energy_transforms: PositiveInt = 3
    energy_hidden: list[PositiveInt] = Field([64, 64], min_length=1)
    energy_passes: PositiveInt | None = None
    shape_flow: FlowKind = "maf"
    shape_transforms: PositiveInt = 4
    shape_hidden: list[PositiveInt] = Field([256, 256], min_length=1)
    shape_passes: PositiveInt | None = 2
    bins: PositiveInt = 8
    noise: float = Field(0.01, ge=0.0, description="Gaussian noise added to the features")
    shape_marginal_bins: NonNegativeInt = 0
    marginal_bound: PositiveFloat = 10.0
    shape_layerwise: StrictBool = False

    @field_validator("shape_marginal_bins")
    @classmethod
    def _zero_or_two(cls, value: int) -> int:
        if value == 1:
            raise ValueError("shape_marginal_bins must be 0 or >= 2, got 1")
        return value


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


class _LayerSplines(LazyTransform):
    """Element-wise monotonic rational-quadratic splines, one per (layer, feature), for the
    layer-wise shape flow: the layer is the one-hot ``context[:, start : start + layers]``.
    All zeros (the initialisation) is the identity."""

    def __init__(self, layers: int, features: int, bins: int, bound: float, start: int) -> None:
        super().__init__()
        self.start, self.layers, self.features, self.bound = start, layers, features, bound
        self.widths = torch.nn.Parameter(torch.zeros(layers, features * bins))
        self.heights = torch.nn.Parameter(torch.zeros(layers, features * bins))
        self.derivatives = torch.nn.Parameter(torch.zeros(layers, features * (bins - 1)))

    def forward(self, c: torch.Tensor | None = None) -> Transform:
        if c is None:
            raise ValueError("the layer-wise splines need a context with the one-hot layer")
        onehot = c[:, self.start : self.start + self.layers]
        widths, heights, derivatives = (
            (onehot @ p).unflatten(-1, (self.features, -1))  # no fixed batch size (ONNX)
            for p in (self.widths, self.heights, self.derivatives)
        )
        spline = MonotonicRQSTransform(widths, heights, derivatives, bound=self.bound, slope=1e-3)
        return DependentTransform(spline, 1)


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
    marginal_layers: tuple[int, int] | None = None,
) -> Flow:
    """A zuko flow of masked autoregressive transforms over a standard normal base.

    ``marginal_bins > 0`` puts an element-wise spline (identity at initialisation) first, on the
    data side: unconditional, or one per layer given ``marginal_layers = (layers, start)``, the
    one-hot layer index at ``context[:, start : start + layers]``.
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
    if marginal_bins > 0 and marginal_layers is not None:
        count, start = marginal_layers
        splines = _LayerSplines(count, features, marginal_bins, marginal_bound, start)
        layers = [splines, *layers]
    elif marginal_bins > 0:
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
    Config = FlowConfig
    options: FlowConfig

    @classmethod
    def required_transform(cls, options: FamilyConfig) -> str | None:
        """Always ``layers``: the energy flow models the layer energies."""
        return "layers"

    @classmethod
    def complete_config(cls, options: FamilyConfig, data: DataFacts) -> FamilyConfig:
        """Fill ``n_layers`` from the transform (a given one must agree); check that
        ``shape_layerwise`` has layers of equal voxel count."""
        assert isinstance(options, FlowConfig)
        options = with_layer_count(options, data)
        sizes = sorted(set(data.layer_sizes))
        if options.shape_layerwise and len(sizes) > 1:
            raise ConfigError(
                f"flow model config: shape_layerwise needs layers of equal voxel count; this "
                f"readout has {sizes}"
            )
        return options

    def __init__(
        self, config: dict[str, Any] | FlowConfig, n_voxels: int, n_conditions: int
    ) -> None:
        super().__init__(config, n_voxels, n_conditions)
        cfg = self.config
        if cfg["n_layers"] is None:
            raise ConfigError(
                "flow model config: n_layers is required (training fills it from the 'layers' "
                "transform)"
            )
        n_layers = int(cfg["n_layers"])
        if not 1 <= n_layers < n_voxels:
            raise ConfigError(
                f"flow model config: n_layers must be in [1, {n_voxels - 1}], got {n_layers}"
            )
        marginal_bins = int(cfg["shape_marginal_bins"])
        self.n_layers = n_layers
        self.n_shape = n_voxels - n_layers
        self.layerwise = cfg["shape_layerwise"]
        if self.layerwise and self.n_shape % n_layers:
            raise ConfigError(
                f"flow model config: shape_layerwise needs layers of equal voxel count: "
                f"{self.n_shape} shape features do not split into {n_layers} layers"
            )
        # features and context of one shape-flow row: a layer, or the whole shower
        shape_features = self.n_shape // n_layers if self.layerwise else self.n_shape
        shape_context = n_conditions + n_layers
        if self.layerwise:  # + one-hot layer, own layer feature, previous layer's shape
            shape_context += n_layers + 1 + shape_features
        self.energy_flow = _flow(
            cfg["energy_flow"], n_layers, n_conditions,
            transforms=int(cfg["energy_transforms"]), hidden=cfg["energy_hidden"],
            passes=_passes(cfg["energy_passes"]), bins=int(cfg["bins"]), shuffle=False,
        )  # fmt: skip
        self.shape_flow = _flow(
            cfg["shape_flow"], shape_features, shape_context,
            transforms=int(cfg["shape_transforms"]), hidden=cfg["shape_hidden"],
            passes=_passes(cfg["shape_passes"]),
            bins=int(cfg["bins"]), shuffle=True,
            marginal_bins=marginal_bins,
            marginal_bound=float(cfg["marginal_bound"]),
            # the one-hot layer index follows the conditions and layer features
            marginal_layers=(n_layers, n_conditions + n_layers) if self.layerwise else None,
        )  # fmt: skip

    def _shape_rows(
        self, c: torch.Tensor, energy: torch.Tensor, shape: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context and features of the shape-flow rows: one row per shower, or, with
        ``shape_layerwise``, one per layer, ``(B * n_layers, ...)``, given the previous layer of
        ``shape`` (teacher forcing; zeros before the first)."""
        if not self.layerwise:
            return torch.cat([c, energy], dim=1), shape
        n, layers = len(shape), self.n_layers
        shape = shape.reshape(n, layers, -1)
        previous = torch.cat([torch.zeros_like(shape[:, :1]), shape[:, :-1]], dim=1)
        context = torch.cat(
            [
                torch.cat([c, energy], dim=1)[:, None].expand(n, layers, -1),
                torch.eye(layers, dtype=shape.dtype).expand(n, layers, layers),
                energy[:, :, None],
                previous,
            ],
            dim=2,
        )
        return context.reshape(n * layers, -1), shape.reshape(n * layers, -1)

    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        noise = float(self.config["noise"])
        if noise > 0:
            x = x + noise * torch.randn_like(x)
        energy, shape = x[:, : self.n_layers], x[:, self.n_layers :]
        nll_energy = -self.energy_flow(c).log_prob(energy).mean()
        context, rows = self._shape_rows(c, energy, shape)
        nll_shape = -self.shape_flow(context).log_prob(rows).sum() / len(x)
        return {"loss": nll_energy + nll_shape, "nll_energy": nll_energy, "nll_shape": nll_shape}

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The noise ``(B, F)`` that :meth:`decode` maps back to the features ``x`` ``(B, F)``."""
        energy, shape = x[:, : self.n_layers], x[:, self.n_layers :]
        context, rows = self._shape_rows(c, energy, shape)
        z_shape = self.shape_flow.transform(context)(rows).reshape(len(x), -1)
        return torch.cat([self.energy_flow.transform(c)(energy), z_shape], dim=1)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.n_voxels, generator=generator)

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self._program().run(noise, c)

    def decode_program(self) -> DecodeProgram:
        """The decode as named steps (:meth:`_program`): what export traces."""
        return self._program()

    def _program(self) -> DecodeProgram:
        """The inverse flows as named steps: the energy flow (its autoregressive passes a
        :class:`Repeat`), then the shape flow, whole or, layer-wise, one :class:`Repeat` step
        per layer given the layer before it (zeros before the first)."""
        layers = self.n_layers

        def cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return torch.cat([a, b], dim=1)

        ops: list[Call | Repeat] = [
            Call(lambda noise: noise[:, :layers], ("noise",), ("z_energy",)),
            *_inverse(self.energy_flow, "z_energy", "c", "layer_energy"),
            Call(cat, ("c", "layer_energy"), ("context",)),
        ]
        if not self.layerwise:
            return DecodeProgram((
                *ops,
                Call(lambda noise: noise[:, layers:], ("noise",), ("z_shape",)),
                *_inverse(self.shape_flow, "z_shape", "context", "shape"),
                Call(cat, ("layer_energy", "shape"), ("features",)),
            ))  # fmt: skip
        return DecodeProgram((
            *ops,
            Call(self._layer_rows, ("noise", "layer_energy"), ("rows", "before_first")),
            Repeat(self._layer_step, layers, "before_first", ("context",), "last_layer",
                   per_step="rows", stacked="layer_shapes"),
            Call(lambda e, s: torch.cat([e, s.transpose(0, 1).flatten(1)], dim=1),
                 ("layer_energy", "layer_shapes"), ("features",)),
        ))  # fmt: skip

    def _layer_rows(
        self, noise: torch.Tensor, energy: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per layer ``[one-hot layer, layer energy feature, layer noise]`` ``(L, N, L + 1 +
        m)``, and the zeros before the first layer ``(N, m)``."""
        layers = self.n_layers
        z = noise[:, layers:].unflatten(1, (layers, -1)).transpose(0, 1)  # (L, N, m)
        # (L, N, L) by broadcasting: an expand to z.shape[1] would trace as a fixed batch
        onehot = torch.eye(layers, dtype=noise.dtype)[:, None, :] + 0.0 * z[:, :, :1]
        # zeros before the first layer (zeros_like traces as a constant)
        return torch.cat([onehot, energy.T[:, :, None], z], dim=2), 0.0 * z[0]

    def _layer_step(
        self, row: torch.Tensor, previous: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """One layer's shape ``(N, m)`` from its row of :meth:`_layer_rows`, the layer before
        and the shared context ``[c, layer energies]``."""
        head = self.n_layers + 1  # one-hot layer and the layer's energy feature
        flow_context = torch.cat([context, row[:, :head], previous], dim=1)
        return self.shape_flow.transform(flow_context).inv(row[:, head:])


def _inverse(flow: Flow, y: str, c: str, out: str) -> list[Call | Repeat]:
    """Steps of ``flow.transform(c).inv(y)`` named ``out``: the transforms in reverse order,
    the passes of each autoregressive one with more than two as a :class:`Repeat` (what
    zuko's ``AutoregressiveTransform`` does, from zeros)."""
    ops: list[Call | Repeat] = []
    transforms = list(flow.transform.transforms)[::-1]
    for k, t in enumerate(transforms):
        name = out if k == len(transforms) - 1 else f"{out}_{k}"
        if isinstance(t, MaskedAutoregressiveTransform) and t.passes > 2:
            ops += [
                Call(lambda y: 0.0 * y, (y,), (f"{name}_start",)),
                Repeat(lambda x, y, c, t=t: t.meta(c, x).inv(y), t.passes,
                       f"{name}_start", (y, c), name),
            ]  # fmt: skip
        else:
            ops.append(Call(lambda y, c, t=t: t(c).inv(y), (y, c), (name,)))
        y = name
    return ops
