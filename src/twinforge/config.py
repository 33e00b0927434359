"""Configuration: pydantic models behind every YAML file, read with YAML's safe loader.

Every model rejects unknown keys and names them. Each top-level config carries a ``kind`` field
(``detector``, ``synthetic``, ...) so that ``twinforge config show FILE`` knows which model
validates it. Stages register their top-level models with :func:`register_kind`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from twinforge.errors import ConfigError

__all__ = [
    "StrictModel",
    "config_kinds",
    "format_validation_error",
    "load_config",
    "load_yaml",
    "parse_energy",
    "register_kind",
    "validate_config",
]

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of all config models: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


_KINDS: dict[str, Callable[[], type[BaseModel]]] = {}


def register_kind(kind: str, loader: Callable[[], type[BaseModel]]) -> None:
    """Make ``kind: <kind>`` files loadable by :func:`load_config`; ``loader`` returns the model.

    The loader is called lazily so that registering costs no import of heavy stage modules.
    """
    _KINDS[kind] = loader


def config_kinds() -> list[str]:
    """The registered top-level config kinds, sorted."""
    _register_builtin_kinds()
    return sorted(_KINDS)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (safe loader; a key given twice is an error); errors name the file
    and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = _safe_load_unique(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _safe_load_unique(text: str) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def validate_config(model: type[M], data: Any, where: str = "config") -> M:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` naming the bad keys."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


def load_config(path: str | Path, model: type[M] | None = None) -> M | BaseModel:
    """Load and validate a YAML config.

    Args:
        path: the YAML file.
        model: the expected model; when None, the file's ``kind`` key selects it.

    Raises:
        ConfigError: missing file, bad YAML, unknown kind, unknown key or invalid value.
    """
    data = load_yaml(path)
    if model is None:
        kind = data.get("kind")
        _register_builtin_kinds()
        if kind is not None and not isinstance(kind, str):
            raise ConfigError(f"{path}: 'kind' must be a word such as 'campaign', got {kind!r}")
        if kind is None:
            raise ConfigError(
                f"{path}: no 'kind' key; set it to one of: {', '.join(config_kinds())}"
            )
        if kind not in _KINDS:
            raise ConfigError(
                f"{path}: unknown kind {kind!r}; known kinds: {', '.join(config_kinds())}"
            )
        model = _KINDS[kind]()  # type: ignore[assignment]
    assert model is not None
    return validate_config(model, data, str(path))


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One message per problem: ``FILE: key 'a.b': what is wrong``."""
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{loc}'")
        elif err["type"] == "missing":
            problems.append(f"missing key '{loc}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"key '{loc}': {msg}" if loc else msg)
    return f"{where}: " + "; ".join(problems)


def _is_union_tag(part: object) -> bool:
    # pydantic puts discriminated-union tags ("sampling") or function names in error locations
    return isinstance(part, str) and ("[" in part or part in _UNION_TAGS)


_UNION_TAGS = {"sampling", "homogeneous", "function-after", "function-before", "variables"}
# ("variables": a parameter space's variables are written directly under ``space:``)

_ENERGY_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$")
_ENERGY_UNITS = {"": 1.0, "ev": 1e-6, "kev": 1e-3, "mev": 1.0, "gev": 1e3, "tev": 1e6}


def parse_energy(value: str | float | int) -> float:
    """An energy in MeV from a number (MeV) or text with a unit: ``"10GeV"``, ``"500 MeV"``.

    Raises:
        ConfigError: unknown unit, not a number, or not a finite positive energy.
    """
    if isinstance(value, bool):
        raise ConfigError(f"energy must be a number or text such as '10GeV', got {value!r}")
    if isinstance(value, int | float):
        energy = float(value)
    else:
        match = _ENERGY_RE.match(str(value))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _ENERGY_UNITS:
            raise ConfigError(
                f"cannot read energy {value!r}: use a number in MeV or a unit among "
                "eV, keV, MeV, GeV, TeV (e.g. '10GeV')"
            )
        energy = float(match.group(1)) * _ENERGY_UNITS[unit]
    if not (energy > 0 and energy < float("inf")):
        raise ConfigError(f"energy must be positive and finite, got {value!r}")
    return energy


def _register_builtin_kinds() -> None:
    """Register the kinds of the stages shipped with twinforge (imports happen lazily)."""
    if "detector" in _KINDS:
        return

    def detector() -> type[BaseModel]:
        from twinforge.detector.config import DetectorConfig

        return DetectorConfig

    def synthetic() -> type[BaseModel]:
        from twinforge.simulation.synthetic import SyntheticConfig

        return SyntheticConfig

    def campaign() -> type[BaseModel]:
        from twinforge.campaign.config import CampaignConfig

        return CampaignConfig

    def simulate() -> type[BaseModel]:
        from twinforge.campaign.config import SimulateConfig

        return SimulateConfig

    def train() -> type[BaseModel]:
        from twinforge.training.train import TrainConfig

        return TrainConfig

    def validation() -> type[BaseModel]:
        from twinforge.validation.suite import ValidationConfig

        return ValidationConfig

    def tune() -> type[BaseModel]:
        from twinforge.tune.config import TuneConfig

        return TuneConfig

    def scaling() -> type[BaseModel]:
        from twinforge.tune.scaling import ScalingConfig

        return ScalingConfig

    register_kind("detector", detector)
    register_kind("validation", validation)
    register_kind("tune", tune)
    register_kind("scaling", scaling)
    register_kind("train", train)
    register_kind("simulate", simulate)
    register_kind("campaign", campaign)
    register_kind("synthetic", synthetic)
