"""Invertible, serialisable preprocessing shared by every model family.

Showers (MeV) become network-friendly features and back:

1. voxel energies are divided by the incident energy times a fixed ``scale`` (energy
   fractions of order one);
2. ``log``: ``y = log(u + eps)``, or ``logit`` of ``u`` squashed into (0, 1) (CaloINN style);
3. each feature is standardised with the mean and standard deviation fitted on training data.

Conditions become ``[log(E / E_ref), one-hot(pdg), theta, phi]``. The inverse clips negative
energies to zero and applies the readout threshold, so generated showers are valid showers.
The transform is saved as a JSON header plus float arrays (safetensors), never pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.numpy import load_file, save_file

from twinforge.errors import TwinforgeError
from twinforge.showers.conditions import Conditions

__all__ = ["ShowerTransform"]

_ARRAYS = ("mean", "std")


@dataclass
class ShowerTransform:
    """Feature transform for ``V`` voxels; ``fit`` it on training data before use.

    Attributes:
        n_voxels: V.
        kind: ``"log"`` or ``"logit"``.
        eps: regulariser of the log/logit, in units of the energy fraction.
        scale: voxel energies are divided by ``scale * E_inc`` (a sampling fraction, say).
        threshold: voxels below this (MeV) are zeroed on the way back.
        pdgs: particle ids of the one-hot condition encoding.
        energy_ref: reference energy of the log-energy condition, MeV.
    """

    n_voxels: int
    kind: Literal["log", "logit"] = "log"
    eps: float = 1e-7
    scale: float = 1.0
    threshold: float = 0.0
    pdgs: list[int] = field(default_factory=lambda: [11])
    energy_ref: float = 1e4
    mean: NDArray[np.float32] | None = None
    std: NDArray[np.float32] | None = None

    # ------------------------------------------------------------------ conditions
    @property
    def n_conditions(self) -> int:
        """Length of the condition vector."""
        return 1 + (len(self.pdgs) if len(self.pdgs) > 1 else 0) + 2

    def encode_conditions(self, conditions: Conditions) -> NDArray[np.float32]:
        """``(N, n_conditions)`` float32: log energy, one-hot pdg (if several), theta, phi."""
        cols = [np.log(conditions.energy / self.energy_ref)[:, None]]
        if len(self.pdgs) > 1:
            known = np.isin(conditions.pdg, self.pdgs)
            if not known.all():
                bad = int(conditions.pdg[~known][0])
                raise TwinforgeError(f"particle {bad} was not in the training data {self.pdgs}")
            cols.append((conditions.pdg[:, None] == np.asarray(self.pdgs)[None, :]).astype(float))
        cols += [conditions.theta[:, None], conditions.phi[:, None]]
        return np.concatenate(cols, axis=1).astype(np.float32)

    # ------------------------------------------------------------------ fitting
    def fit(self, showers: NDArray[np.floating], energy: NDArray[np.floating]) -> ShowerTransform:
        """Fit the per-feature standardisation on ``(N, V)`` showers (MeV), energies (MeV)."""
        y = self._squash(showers, energy)
        self.mean = y.mean(axis=0).astype(np.float32)
        self.std = np.maximum(y.std(axis=0), 1e-3).astype(np.float32)
        return self

    def _squash(self, showers: NDArray[np.floating], energy: NDArray[np.floating]) -> NDArray:
        u = np.asarray(showers, dtype=np.float64) / (self.scale * np.asarray(energy)[:, None])
        if self.kind == "log":
            return np.log(u + self.eps)
        p = self.eps + (1 - 2 * self.eps) * np.clip(u, 0.0, 1.0)
        return np.log(p) - np.log1p(-p)

    # ------------------------------------------------------------------ numpy
    def forward(self, showers: NDArray[np.floating], energy: NDArray[np.floating]) -> NDArray:
        """Showers ``(N, V)`` MeV -> features ``(N, V)`` float32."""
        self._require_fitted()
        return ((self._squash(showers, energy) - self.mean) / self.std).astype(np.float32)

    def inverse(self, features: NDArray[np.floating], energy: NDArray[np.floating]) -> NDArray:
        """Features ``(N, V)`` -> showers ``(N, V)`` float32 MeV (non-negative, thresholded)."""
        out = self.inverse_torch(torch.as_tensor(np.asarray(features, dtype=np.float32)),
                                 torch.as_tensor(np.asarray(energy, dtype=np.float32)))  # fmt: skip
        return out.numpy()

    # ------------------------------------------------------------------ torch (exportable)
    def inverse_torch(self, features: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        """The inverse as torch operations only (traceable into ONNX); energy ``(N,)`` MeV."""
        self._require_fitted()
        mean = torch.as_tensor(self.mean, dtype=features.dtype, device=features.device)
        std = torch.as_tensor(self.std, dtype=features.dtype, device=features.device)
        y = features * std + mean
        if self.kind == "log":
            u = torch.exp(y) - self.eps
        else:
            u = (torch.sigmoid(y) - self.eps) / (1 - 2 * self.eps)
        showers = torch.clamp(u, min=0.0) * (self.scale * energy[:, None])
        if self.threshold > 0:
            showers = torch.where(showers < self.threshold, torch.zeros_like(showers), showers)
        return showers

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """The JSON-serialisable settings (everything but the fitted arrays)."""
        return {
            "n_voxels": self.n_voxels, "kind": self.kind, "eps": self.eps, "scale": self.scale,
            "threshold": self.threshold, "pdgs": list(self.pdgs), "energy_ref": self.energy_ref,
        }  # fmt: skip

    def save(self, directory: str | Path) -> None:
        """Write ``transform.json`` and ``transform.safetensors`` into ``directory``."""
        self._require_fitted()
        directory = Path(directory)
        (directory / "transform.json").write_text(json.dumps(self.config(), indent=1))
        save_file({"mean": self.mean, "std": self.std}, str(directory / "transform.safetensors"))

    @classmethod
    def load(cls, directory: str | Path) -> ShowerTransform:
        """Read a transform written by :meth:`save`.

        Raises:
            TwinforgeError: missing, corrupt or inconsistent files.
        """
        directory = Path(directory)
        try:
            config = json.loads((directory / "transform.json").read_text())
            arrays = load_file(str(directory / "transform.safetensors"))
            transform = cls(**config)
        except FileNotFoundError as exc:
            raise TwinforgeError(f"{directory}: missing {Path(exc.filename).name}") from None
        except (json.JSONDecodeError, TypeError, ValueError, OSError) as exc:
            raise TwinforgeError(f"{directory}: corrupt transform ({exc})") from None
        for name in _ARRAYS:
            if name not in arrays or arrays[name].shape != (transform.n_voxels,):
                raise TwinforgeError(
                    f"{directory}: transform.safetensors lacks '{name}' of shape "
                    f"({transform.n_voxels},)"
                )
        transform.mean, transform.std = arrays["mean"], arrays["std"]
        return transform

    def _require_fitted(self) -> None:
        if self.mean is None or self.std is None:
            raise TwinforgeError("the transform is not fitted: call fit() on training data")
