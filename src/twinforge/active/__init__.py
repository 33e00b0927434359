"""Active learning: choose where to simulate next (gest-api generators, acquisitions, Xopt).

:class:`~twinforge.active.generator.SurrogateGenerator` is the adaptive sampler of campaigns
(``sampler: {kind: adaptive}``); :mod:`~twinforge.active.acquisition` ranks candidate points;
:mod:`~twinforge.active.xopt` bridges to Xopt in both directions.
"""

from twinforge.active.acquisition import ACQUISITIONS, integrated_variance, select
from twinforge.active.config import ActiveConfig
from twinforge.active.generator import SurrogateGenerator
from twinforge.active.vocs import space_to_vocs, vocs_to_space

__all__ = [
    "ACQUISITIONS",
    "ActiveConfig",
    "SurrogateGenerator",
    "integrated_variance",
    "select",
    "space_to_vocs",
    "vocs_to_space",
]
