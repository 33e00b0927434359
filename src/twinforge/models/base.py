"""The model protocol and the self-contained, safely loadable model directory.

Every family is a ``torch.nn.Module`` with three methods:

- ``loss(x, c) -> dict`` with a scalar ``"loss"``: features ``x`` ``(B, F)``, conditions
  ``c`` ``(B, C)`` (see :class:`~twinforge.models.transforms.ShowerTransform`; ``F`` is its
  ``n_features``: V, or the layer energies plus V for ``kind="layers"``; a model's
  ``n_voxels`` attribute holds ``F``);
- ``noise(n, generator) -> Tensor``: the random input of ``n`` showers;
- ``decode(noise, c) -> Tensor``: features ``(n, F)``, a deterministic function of its inputs
  (what ONNX export traces).

:class:`Surrogate` bundles a model with its transform and describes a trained model directory:
``model.json`` (family, config, sizes, binning, provenance), ``weights.safetensors`` and the
transform files. Loading never unpickles anything.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from safetensors.torch import load_file, save_file

from twinforge import __version__
from twinforge.errors import TwinforgeError
from twinforge.models.transforms import ShowerTransform
from twinforge.showers.conditions import Conditions
from twinforge.showers.io import temporary_name

__all__ = ["FAMILIES", "GenerativeModel", "Surrogate", "model_class", "register_family"]

FORMAT = "twinforge-model"
FORMAT_VERSION = 1


class GenerativeModel(torch.nn.Module):
    """Base class of the model families (see the module docstring for the protocol)."""

    family: ClassVar[str]

    def __init__(self, config: dict[str, Any], n_voxels: int, n_conditions: int) -> None:
        super().__init__()
        self.config = dict(config)
        self.n_voxels = n_voxels
        self.n_conditions = n_conditions

    def loss(self, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, noise: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


FAMILIES: dict[str, Callable[[], type[GenerativeModel]]] = {}


def register_family(name: str, loader: Callable[[], type[GenerativeModel]]) -> None:
    """Make family ``name`` buildable and loadable; ``loader`` returns its class lazily."""
    FAMILIES[name] = loader


def model_class(family: str) -> type[GenerativeModel]:
    """The class of a family name.

    Raises:
        TwinforgeError: unknown family.
    """
    _register_builtin_families()
    if family not in FAMILIES:
        raise TwinforgeError(
            f"unknown model family {family!r}; known: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[family]()


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


_BUILTIN = {
    "vae": ("twinforge.models.vae", "ConditionalVAE"),
    "gan": ("twinforge.models.gan", "ConditionalGAN"),
    "flow": ("twinforge.models.flow", "CaloFlow"),
    "flow-matching": ("twinforge.models.flow_matching", "FlowMatching"),
}


def _register_builtin_families() -> None:
    """Register the shipped families; each module is imported only when its family is used."""
    for name, (module, attr) in _BUILTIN.items():
        if name not in FAMILIES:

            def loader(module: str = module, attr: str = attr) -> type[GenerativeModel]:
                return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]

            register_family(name, loader)
