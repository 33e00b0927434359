"""twinforge: fast calorimeter simulation, end to end."""

__version__ = "0.1.0"
