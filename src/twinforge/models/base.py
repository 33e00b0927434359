"""The model protocol, the family registry and the self-contained, safely loadable model
directory.

Every family is a subclass of :class:`GenerativeModel` with a pydantic ``Config`` (its options,
unknown keys rejected by name) and three methods:

- ``loss(x, c) -> dict`` with a scalar ``"loss"``: features ``x`` ``(B, F)``, conditions
  ``c`` ``(B, C)`` (see :class:`~twinforge.models.transforms.ShowerTransform`; ``F`` is its
  ``n_features``: V, or the layer energies plus V for ``kind="layers"``; a model's
  ``n_voxels`` attribute holds ``F``);
- ``noise(n, generator) -> Tensor``: the random input of ``n`` showers;
- ``decode(noise, c) -> Tensor``: features ``(n, F)``, a deterministic function of its inputs
  (what ONNX export traces).

A family whose decode repeats a step many times (the passes of an autoregressive inverse, one
inverse per layer) may also describe it as a :class:`DecodeProgram` of :class:`Call` and
:class:`Repeat` steps from ``decode_program()``: ONNX export then traces each step once and
writes every :class:`Repeat` as an ONNX ``Loop``, so that the export time and the graph do not
grow with the number of repetitions. ``decode`` should run the same program
(:meth:`DecodeProgram.run`).

:class:`Surrogate` bundles a model with its transform and describes a trained model directory:
``model.json`` (family, config, sizes, binning, provenance), ``weights.safetensors`` and the
transform files. Loading never unpickles anything.

Training asks a family, never its name, what it needs (see :class:`GenerativeModel`):
``required_transform`` (a transform kind it must have), ``complete_config`` (options filled in
from the data, such as the number of layers or the readout grid) and ``adversarial`` (two
optimisers, :mod:`twinforge.training.module`).

Families are plug-ins: entry points of group ``twinforge.families`` name their classes; a
package adds one with, in its ``pyproject.toml``::

    [project.entry-points."twinforge.families"]
    my-family = "my_package.models:MyFamily"
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from safetensors.torch import load_file, save_file

from twinforge import __version__
from twinforge.config import StrictModel, validate_config
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.models.transforms import ShowerTransform
from twinforge.showers.conditions import Conditions
from twinforge.showers.io import temporary_name

__all__ = [
    "FAMILIES",
    "GROUP",
    "Call",
    "DataFacts",
    "DecodeProgram",
    "FamilyConfig",
    "GenerativeModel",
    "Repeat",
    "Surrogate",
    "available_families",
    "model_class",
    "register_family",
    "with_layer_count",
]

GROUP = "twinforge.families"

FORMAT = "twinforge-model"
FORMAT_VERSION = 1


class FamilyConfig(StrictModel):
    """Base of every family's options (a pydantic model: unknown keys are errors)."""


@dataclass(frozen=True)
class DataFacts:
    """What training knows about its data when it completes a family's config.

    Attributes:
        n_layer_features: layer-energy features of the ``layers`` transform (layers with
            voxels); 0 for the other kinds.
        layer_sizes: voxels per layer with voxels, in order.
        grid: ``(n_z, n_alpha, n_r)`` of a regular readout whose voxels are the features, else
            None.
    """

    n_layer_features: int
    layer_sizes: tuple[int, ...]
    grid: tuple[int, int, int] | None


@dataclass(frozen=True)
class Call:
    """``outputs = fn(*inputs)`` on named tensors of a :class:`DecodeProgram` (one output: a
    tensor; several: a tuple of them)."""

    fn: Callable[..., Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Repeat:
    """``steps`` times ``state = fn(state, *shared)`` (with ``per_step``: ``fn(per_step[i],
    state, *shared)``); the last state is named ``output`` and, with ``stacked``, every state,
    ``(steps, N, ...)``, is named ``stacked``."""

    fn: Callable[..., torch.Tensor]
    steps: int
    state: str
    shared: tuple[str, ...]
    output: str
    per_step: str | None = None
    stacked: str | None = None


@dataclass(frozen=True)
class DecodeProgram:
    """A decode as named steps (see the module docstring): from the tensors ``noise`` and
    ``c`` to ``features``, each name given a value once; the names of the exported graph's
    inputs and output (``energy``, ``pdg``, ``theta``, ``phi``, ``showers``) are reserved.

    A :class:`Repeat`'s ``per_step`` and ``stacked`` tensors are ``(steps, N, ...)``; every
    other tensor has the batch first. Export traces each step on its own, so none may branch
    on data or fix the batch size (``unflatten`` and slices, not ``reshape(len(x), ...)``).
    """

    ops: tuple[Call | Repeat, ...]

    def __post_init__(self) -> None:
        reserved = {"noise", "c", "energy", "pdg", "theta", "phi", "showers"}
        seen: set[str] = set()
        for op in self.ops:
            made = op.outputs if isinstance(op, Call) else (op.output, op.stacked)
            for name in made:
                if name is None:
                    continue
                if name in reserved or "/" in name:
                    raise ValueError(f"decode program: {name!r} is reserved or has a '/'")
                if name in seen:
                    raise ValueError(f"decode program: {name!r} is given twice")
                seen.add(name)
        if "features" not in seen:
            raise ValueError("decode program: nothing is named 'features'")

    def steps_major(self) -> set[str]:
        """The names of the ``(steps, N, ...)`` tensors."""
        names = {n for op in self.ops if isinstance(op, Repeat) for n in (op.per_step, op.stacked)}
        return names - {None}  # type: ignore[return-value]

    def evaluate(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run the steps on ``values`` (``noise`` and ``c``, at least); returns every tensor."""
        env = dict(values)
        for op in self.ops:
            if isinstance(op, Call):
                out = op.fn(*(env[name] for name in op.inputs))
                env.update(zip(op.outputs, out if isinstance(out, tuple) else (out,), strict=True))
                continue
            state, shared, states = env[op.state], [env[n] for n in op.shared], []
            for i in range(op.steps):
                head = [] if op.per_step is None else [env[op.per_step][i]]
                state = op.fn(*head, state, *shared)
                states.append(state)
            env[op.output] = state
            if op.stacked is not None:
                env[op.stacked] = torch.stack(states)
        return env

    def run(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The decode: features ``(N, F)``."""
        return self.evaluate({"noise": noise, "c": c})["features"]


class GenerativeModel(torch.nn.Module):
    """Base class of the model families (see the module docstring for the protocol).

    A family sets ``family`` (its registered name) and ``Config`` (its options), and may
    override ``required_transform`` and ``complete_config``. ``config`` holds the validated
    options as plain JSON (what ``model.json`` stores); ``options`` as the ``Config`` object.
    """

    family: ClassVar[str]
    Config: ClassVar[type[FamilyConfig]] = FamilyConfig
    adversarial: ClassVar[bool] = False
    """True: trained with two optimisers (``configure_optimizers``, ``adversarial_step``)."""

    def __init__(
        self, config: Mapping[str, Any] | FamilyConfig, n_voxels: int, n_conditions: int
    ) -> None:
        super().__init__()
        self.options = self.validate_options(config)
        self.config = self.options.model_dump(mode="json")
        self.n_voxels = n_voxels
        self.n_conditions = n_conditions

    # ------------------------------------------------------------------ the family contract
    @classmethod
    def validate_options(cls, config: Mapping[str, Any] | FamilyConfig) -> FamilyConfig:
        """``config`` as this family's ``Config``.

        Raises:
            ConfigError: an unknown option (named) or an invalid value, in one line.
        """
        if isinstance(config, cls.Config):
            return config
        data = config.model_dump() if isinstance(config, FamilyConfig) else dict(config)
        return validate_config(cls.Config, data, f"{cls.family} model config")

    @classmethod
    def required_transform(cls, options: FamilyConfig) -> str | None:
        """The feature-transform kind these options need (``"layers"``...), or None: any."""
        return None

    @classmethod
    def complete_config(cls, options: FamilyConfig, data: DataFacts) -> FamilyConfig:
        """The options with what training learns from the data filled in (default: as given).

        Raises:
            ConfigError: options that contradict the data.
        """
        return options

    # ------------------------------------------------------------------ the model protocol
    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_program(self) -> DecodeProgram | None:
        """The decode as a :class:`DecodeProgram`, or None (the default): export traces
        ``decode`` whole."""
        return None

    # adversarial families only (``adversarial = True``; see twinforge.training.module)
    def configure_optimizers(self, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
        raise NotImplementedError(f"{type(self).__name__} is not adversarial")

    def adversarial_step(
        self, x: torch.Tensor, c: torch.Tensor, optimizers: list[Any], step: int
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} is not adversarial")


def with_layer_count(options: Any, data: DataFacts) -> Any:
    """``options`` (a config with an ``n_layers`` field) with ``n_layers`` set to the layer
    features of the ``layers`` transform.

    Raises:
        ConfigError: a value given in the config disagrees with the data.
    """
    given = options.n_layers
    if given is None:
        return options.model_copy(update={"n_layers": data.n_layer_features})
    if given != data.n_layer_features:
        raise ConfigError(
            f"model config: n_layers={given}, but the readout has {data.n_layer_features} "
            "layers with voxels (leave n_layers out)"
        )
    return options


FAMILIES: dict[str, Callable[[], type[GenerativeModel]]] = {}
"""Families registered at run time (:func:`register_family`), beside the entry points."""


def register_family(name: str, loader: Callable[[], type[GenerativeModel]]) -> None:
    """Make family ``name`` buildable and loadable in this process, without an entry point
    (tests, notebooks); ``loader`` returns its class lazily. Entry points are the way for a
    package."""
    FAMILIES[name] = loader


def available_families() -> dict[str, str]:
    """Family names and where they come from (entry point value, or "registered")."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    found |= dict.fromkeys(FAMILIES, "registered")
    return dict(sorted(found.items()))


@cache
def _load_entry_point(name: str, value: str) -> type[GenerativeModel]:
    return EntryPoint(name, value, GROUP).load()  # type: ignore[no-any-return]


def model_class(family: str) -> type[GenerativeModel]:
    """The class of a family name.

    Raises:
        ConfigError: unknown family (the installed ones listed), an entry point that does not
            import, or a class that is not a :class:`GenerativeModel` of that name.
    """
    if family in FAMILIES:
        klass = FAMILIES[family]()
    else:
        points = {ep.name: ep.value for ep in entry_points(group=GROUP)}
        if family not in points:
            raise ConfigError(
                f"unknown model family {family!r}; known: "
                f"{', '.join(available_families()) or 'none'} (a package adds one through the "
                f"{GROUP!r} entry points)"
            )
        try:
            klass = _load_entry_point(family, points[family])
        except ImportError as exc:
            raise ConfigError(
                f"model family {family!r} ({points[family]}) cannot be imported: {exc}"
            ) from None
    if not (isinstance(klass, type) and issubclass(klass, GenerativeModel)):
        raise ConfigError(f"model family {family!r} is not a twinforge GenerativeModel subclass")
    if getattr(klass, "family", None) != family:
        raise ConfigError(f"model family {family!r} is registered for class {klass.__name__} "
                          f"whose family is {getattr(klass, 'family', None)!r}")  # fmt: skip
    return klass


@dataclass
class Surrogate:
    """A trained fast-simulation model: network + transform + what it was trained for.

    Attributes:
        model: the network.
        transform: the fitted feature transform.
        binning_xml: CaloChallenge binning of the showers it generates.
        provenance: training data, hyper-parameters, software versions, ...
    """

    model: GenerativeModel
    transform: ShowerTransform
    binning_xml: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.model.family

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        energy: ArrayLike,
        pdg: ArrayLike = 11,
        theta: ArrayLike = 0.0,
        phi: ArrayLike = 0.0,
        *,
        seed: int | None = None,
        batch_size: int = 10_000,
    ) -> NDArray[np.float32]:
        """Showers ``(N, V)`` float32 in MeV for N incident energies (MeV) and conditions.

        Deterministic for a given ``seed``; non-negative, readout threshold applied.
        """
        cond = Conditions.make(energy, pdg, theta, phi)
        c_all = torch.as_tensor(self.transform.encode_conditions(cond))
        e_all = torch.tensor(cond.energy, dtype=torch.float32)
        generator = torch.Generator().manual_seed(seed if seed is not None else 0)
        self.model.eval()
        out = []
        for start in range(0, len(cond), batch_size):
            c = c_all[start : start + batch_size]
            z = self.model.noise(len(c), generator)
            features = self.model.decode(z, c)
            out.append(self.transform.inverse_torch(features, e_all[start : start + batch_size]))
        if not out:
            return np.zeros((0, self.transform.n_voxels), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32, copy=False)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model directory atomically (temporary directory, then rename)."""
        final = Path(directory)
        if final.exists() and not overwrite:
            raise TwinforgeError(f"{final}: already exists (--overwrite replaces it)")
        if not final.parent.is_dir():
            raise TwinforgeError(f"{final}: directory {final.parent} does not exist")
        tmp = temporary_name(final)
        tmp.mkdir()
        try:
            header = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "family": self.family,
                "config": self.model.config,
                "n_voxels": self.model.n_voxels,
                "n_conditions": self.model.n_conditions,
                "binning_xml": self.binning_xml,
                "provenance": self.provenance,
                "twinforge_version": __version__,
            }
            (tmp / "model.json").write_text(json.dumps(header, indent=1, default=str))
            state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
            save_file(state, str(tmp / "weights.safetensors"))
            self.transform.save(tmp)
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @classmethod
    def load(cls, directory: str | Path) -> Surrogate:
        """Load a model directory (no pickle: JSON and safetensors only).

        Raises:
            TwinforgeError: missing directory or file, corrupt JSON or weights, unknown
                family, weights that do not fit the configured network.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise TwinforgeError(f"{directory}: model directory not found")
        try:
            header = json.loads((directory / "model.json").read_text())
        except FileNotFoundError:
            raise TwinforgeError(f"{directory}: not a model directory (no model.json)") from None
        except json.JSONDecodeError as exc:
            raise TwinforgeError(f"{directory}/model.json: corrupt ({exc})") from None
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise TwinforgeError(
                f"{directory}: not a twinforge model directory of format {FORMAT_VERSION}"
            )
        transform = ShowerTransform.load(directory)
        klass = model_class(header["family"])
        try:
            model = klass(header["config"], int(header["n_voxels"]), int(header["n_conditions"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise TwinforgeError(f"{directory}/model.json: invalid config ({exc})") from None
        try:
            state = load_file(str(directory / "weights.safetensors"))
        except FileNotFoundError:
            raise TwinforgeError(f"{directory}: missing weights.safetensors") from None
        except Exception as exc:  # safetensors raises its own error type for corrupt files
            raise TwinforgeError(f"{directory}/weights.safetensors: corrupt ({exc})") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise TwinforgeError(
                f"{directory}: weights do not match the {header['family']} config ({first})"
            ) from None
        if transform.n_features != model.n_voxels:
            raise TwinforgeError(f"{directory}: transform and model disagree on the voxel count")
        model.eval()
        return cls(model, transform, header.get("binning_xml", ""), header.get("provenance", {}))
