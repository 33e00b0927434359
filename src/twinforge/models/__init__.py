"""Generative fast-simulation models behind one protocol (see :mod:`twinforge.models.base`)."""

from twinforge.models.base import GenerativeModel, Surrogate, model_class, register_family
from twinforge.models.transforms import ShowerTransform

__all__ = ["GenerativeModel", "ShowerTransform", "Surrogate", "model_class", "register_family"]
