"""The tuning config (``kind: tune``): a training config, a search space over it, an objective
from the validation suite, a sampler, a pruner, budgets and where the trials run.

::

    kind: tune
    study_name: vae-siw
    train: ../train/vae.yaml              # relative to this file, or the mapping inline
    space:
      optim.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      model.config.latent_dim: {type: int, low: 8, high: 64, step: 8}
      model.config.hidden: {type: categorical, choices: [[256, 128], [512, 256]]}
    objective: fpd                        # or {weighted: {fpd: 1.0, auc_high: 10.0}}
    reference: campaigns/.../tune-reference.h5
    n_trials: 30

Every path of ``space`` is a dotted path of the training config (:class:`TrainConfig`);
``model.config.<option>`` names an option of the model family (its ``Config``). Each is checked
when the file loads: an unknown path or option, a distribution whose values the training config
refuses (tried at its ends and inside) and an objective the suite does not compute are
:class:`~twinforge.errors.ConfigError` s of one line.

Paths: ``train`` and ``validation`` (config files) are relative to the tune file; ``reference``
(a shower file) and ``output``, like the training config's ``data.files``, to the directory
``twinforge tune`` runs in.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from twinforge.campaign.executors import ExecutorConfig
from twinforge.config import StrictModel, format_validation_error, load_config
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.tracking import TrackingConfig
from twinforge.training.train import TrainConfig
from twinforge.tune.objective import ObjectiveSpec, WeightedObjective, check_objective
from twinforge.validation.suite import ValidationConfig

__all__ = [
    "NOT_TUNABLE",
    "HeartbeatSpec",
    "Param",
    "PrunerSpec",
    "SamplerSpec",
    "TuneConfig",
    "apply_params",
    "check_space",
    "decode_choice",
    "family_options",
    "load_tune_config",
    "tunable_paths",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

NOT_TUNABLE = frozenset(
    {"kind", "name", "output", "init_from", "data.files", "model.family", "model.config"}
)
"""Training-config paths that are not hyper-parameters (what is trained on, names, places; a
study tunes one family, whose options are ``model.config.<option>``)."""


# --------------------------------------------------------------------------- search space
class Param(StrictModel):
    """One dimension of the search space.

    ``float``: ``low``/``high`` (``log``: sampled uniformly in log; ``step``: a grid);
    ``int``: ``low``/``high`` inclusive, ``step`` (default 1), ``log``; ``categorical``:
    ``choices``, any YAML values (lists such as layer widths too).
    """

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: PositiveFloat | None = None
    choices: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.type == "categorical":
            if self.choices is None:
                raise ValueError("a categorical parameter needs 'choices'")
            if any(v is not None for v in (self.low, self.high, self.step)) or self.log:
                raise ValueError("a categorical parameter takes 'choices' only")
            texts = [_choice_text(c) for c in self.choices]
            if len(set(texts)) != len(texts):
                raise ValueError(f"choices repeat a value: {self.choices}")
            return self
        if self.choices is not None:
            raise ValueError(f"'choices' belong to type categorical, not {self.type}")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"needs finite low <= high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log sampling needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("'step' and 'log' cannot be combined (Optuna samples one or other)")
        if self.type == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                if value is not None and value != int(value):
                    raise ValueError(f"an int parameter needs an integer {key}, got {value}")
        return self

    def distribution(self) -> Any:
        """The Optuna distribution (categorical values that are not plain scalars are given
        to Optuna as their JSON text; :func:`decode_choice` turns them back)."""
        import optuna.distributions as d

        if self.type == "float":
            assert self.low is not None and self.high is not None
            return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            assert self.low is not None and self.high is not None
            step = int(self.step) if self.step is not None else 1
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=step)
        assert self.choices is not None
        return d.CategoricalDistribution([_choice_value(c) for c in self.choices])

    def probe_values(self) -> list[Any]:
        """Values the training config must accept: both ends and an inner point (not on an
        integer for floats), or every choice."""
        if self.type == "categorical":
            assert self.choices is not None
            return list(self.choices)
        assert self.low is not None and self.high is not None
        lo, hi = self.low, self.high
        if self.type == "int":
            return [int(lo), int(hi)]
        inner = (
            math.exp(0.63 * math.log(lo) + 0.37 * math.log(hi))
            if self.log
            else (lo + 0.37 * (hi - lo))
        )
        if self.step is not None:
            inner = lo + round((inner - lo) / self.step) * self.step
        return [lo, hi, inner]

    def describe(self) -> str:
        """One line for reports: ``float 1e-4..3e-3 (log)``."""
        if self.type == "categorical":
            return "one of " + ", ".join(_choice_text(c) for c in self.choices or [])
        extra = " (log)" if self.log else f" (step {self.step:g})" if self.step else ""
        return f"{self.type} {self.low:g}..{self.high:g}{extra}"


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _choice_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _choice_value(value: Any) -> Any:
    return value if _scalar(value) else _choice_text(value)


def decode_choice(param: Param, value: Any) -> Any:
    """A sampled value as the training config takes it (JSON-encoded choices decoded)."""
    if param.type != "categorical" or not isinstance(value, str):
        return value
    assert param.choices is not None
    for choice in param.choices:
        if not _scalar(choice) and _choice_text(choice) == value:
            return choice
    return value


# --------------------------------------------------------------------------- study settings
class SamplerSpec(StrictModel):
    """How the next trial's parameters are chosen: ``tpe`` (tree-structured Parzen estimator)
    or ``gp`` (Gaussian-process Bayesian optimisation); also written as just the name."""

    kind: Literal["tpe", "gp"] = "tpe"
    seed: NonNegativeInt | None = Field(
        0, description="sampler seed (None: random); in parallel runs each ask gets seed + k"
    )
    startup_trials: PositiveInt = Field(
        10, description="random trials before the model of the objective is used"
    )

    @model_validator(mode="before")
    @classmethod
    def _name(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data


class PrunerSpec(StrictModel):
    """Stop a trial early when its validation loss is worse than the median of the other
    trials at the same epoch (``median``), or never (``none``); also written as the name."""

    kind: Literal["median", "none"] = "median"
    warmup_epochs: NonNegativeInt = Field(
        2, description="epochs of every trial that are never pruned"
    )
    startup_trials: NonNegativeInt = Field(3, description="trials run in full before any is pruned")

    @model_validator(mode="before")
    @classmethod
    def _name(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data


class HeartbeatSpec(StrictModel):
    """Resuming after a kill: each running trial writes a heartbeat into the study storage;
    one silent for ``grace_s`` is failed and queued again with the same parameters."""

    interval_s: PositiveInt = Field(30, description="seconds between a trial's heartbeats")
    grace_s: PositiveInt = Field(
        120, description="a running trial without a heartbeat for this long is dead"
    )
    max_retry: NonNegativeInt = Field(2, description="times one parameter set is run again")

    @model_validator(mode="after")
    def _order(self) -> HeartbeatSpec:
        if self.grace_s <= self.interval_s:
            raise ValueError(f"grace_s ({self.grace_s}) must exceed interval_s ({self.interval_s})")
        return self


class TuneConfig(StrictModel):
    """A hyper-parameter search (``kind: tune``); see the module docstring."""

    kind: Literal["tune"] = "tune"
    study_name: str | None = Field(
        None, description="the study in the storage and its directory (default: <train>-tune)"
    )
    train: str | TrainConfig = Field(
        description="training YAML (relative to this file) or the training config inline"
    )
    space: dict[str, Param] = Field(min_length=1, description="dotted training-config path: range")
    objective: ObjectiveSpec = Field(
        description="a figure of the validation suite (minimised), or {weighted: {figure: w}}"
    )
    reference: str = Field(
        description="held-out reference shower file (not a training file) each trial's model "
        "is validated against"
    )
    max_showers: PositiveInt | None = Field(
        None, description="validate on at most this many reference showers (seeded subset)"
    )
    validation: str | ValidationConfig | None = Field(
        None,
        description="suite settings (a validation YAML relative to this file, or inline); the "
        "metrics are those the objective needs, the noise floor off unless set",
    )
    trial_reports: bool = Field(
        False,
        description="also write each trial's validation report.html (its figures cost more "
        "than the objective); metrics.json is always written",
    )
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    n_trials: PositiveInt = Field(20, description="finished (complete or pruned) trials wanted")
    timeout_minutes: PositiveFloat | None = Field(
        None, description="wall-clock budget of one run: no trial starts after it"
    )
    max_failed_trials: PositiveInt = Field(
        5, description="stop after this many trials of one run failed"
    )
    executor: ExecutorConfig = Field(
        default_factory=lambda: ExecutorConfig(kind="local"),
        description="where trials run: local (one after another) or Dask (in parallel)",
    )
    storage: str | None = Field(
        None,
        description="Optuna storage URL; default beside the catalogue (SQLite: studies.sqlite "
        "in its folder; PostgreSQL: its database, schema 'optuna')",
    )
    output: str = Field("studies/{study}", description="study directory (trials, report)")
    heartbeat: HeartbeatSpec = Field(default_factory=HeartbeatSpec)
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig,
        description="experiment tracking: one run for the study, a child run per trial",
    )

    @field_validator("study_name")
    @classmethod
    def _study_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(
                f"{value!r}: use letters, digits, '.', '_' and '-' (it names a directory)"
            )
        return value

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_form(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if not (isinstance(value, dict) and set(value) == {"weighted"}):
            raise ValueError(
                "expected a figure name such as fpd, or {weighted: {fpd: 1.0, auc_high: 10.0}}, "
                f"got {value!r}"
            )
        weights = value["weighted"]
        if not isinstance(weights, dict) or not weights:
            raise ValueError(f"weighted: expected {{figure: weight, ...}}, got {weights!r}")
        for name, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise ValueError(f"weight of {name!r} must be a number, got {weight!r}")
        return WeightedObjective(weighted={str(k): float(w) for k, w in weights.items()})

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: ObjectiveSpec) -> ObjectiveSpec:
        check_objective(value)
        return value

    @model_validator(mode="after")
    def _inline_space(self) -> TuneConfig:
        if isinstance(self.train, TrainConfig):
            check_space(self.space, self.train)
        return self

    @property
    def study(self) -> str:
        """The study's name."""
        if self.study_name is not None:
            return self.study_name
        base = self.train.name if isinstance(self.train, TrainConfig) else Path(self.train).stem
        return f"{base}-tune"

    def study_dir(self) -> Path:
        """The study directory (relative paths: to the current directory)."""
        return Path(self.output.format(study=self.study))

    def train_config(self) -> TrainConfig:
        """The base training config (after :func:`load_tune_config` or with it inline)."""
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(f"train: {self.train!r} not loaded yet (use load_tune_config)")
        return self.train

    def suite_config(self) -> ValidationConfig:
        """The validation config the objective is computed with."""
        from twinforge.tune.objective import suite_config

        if isinstance(self.validation, str):
            raise ConfigError(f"validation: {self.validation!r} not loaded yet")
        return suite_config(self.objective, self.validation)


def load_tune_config(path: str | Path) -> TuneConfig:
    """Read a tune YAML and the training (and validation) config it names; check the space.

    Raises:
        ConfigError: any problem, in one line naming the file and the key.
    """
    path = Path(path)
    config = load_config(path, TuneConfig)
    assert isinstance(config, TuneConfig)
    config = config.model_copy(update=load_linked(path, config.train, config.validation))
    try:
        check_space(config.space, config.train_config())
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def load_linked(
    path: Path, train: str | TrainConfig, validation: str | ValidationConfig | None
) -> dict[str, Any]:
    """The training and validation configs a study file names (relative to it), loaded, as
    updates of the study's config: ``{"train": ..., "validation": ...}`` (those given as files).

    Raises:
        ConfigError: one line naming the study file, the key and the problem.
    """
    updates: dict[str, Any] = {}
    for key, value, model in (("train", train, TrainConfig),
                              ("validation", validation, ValidationConfig)):  # fmt: skip
        if isinstance(value, str):
            try:
                updates[key] = load_config(_beside(path, value), model)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {key}: {exc}") from None
    return updates


def _beside(config_file: Path, name: str) -> Path:
    target = Path(name).expanduser()
    return target if target.is_absolute() else config_file.parent / target


# --------------------------------------------------------------------------- path checks
def family_options(family: str) -> dict[str, Any]:
    """The options of a model family (its pydantic ``Config``) and their defaults (None where
    training computes one, such as ``n_layers``).

    Raises:
        ConfigError: unknown family.
    """
    from twinforge.models.base import model_class

    fields = model_class(family).Config.model_fields
    return {
        name: (None if info.is_required() else info.get_default(call_default_factory=True))
        for name, info in fields.items()
    }


def tunable_paths(train: TrainConfig) -> list[str]:
    """Every dotted path a search space may name for ``train`` (sorted)."""
    paths: list[str] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            sub = info.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                walk(sub, f"{path}.")
            elif path not in NOT_TUNABLE:
                paths.append(path)

    walk(TrainConfig, "")
    paths += [f"model.config.{o}" for o in family_options(train.model.family)]
    return sorted(paths)


def check_space(space: dict[str, Param], train: TrainConfig) -> None:
    """Check that every path of ``space`` is a hyper-parameter of ``train`` and that the
    training config accepts the distribution's values (ends, an inner point, every choice).

    Raises:
        ConfigError: ``space 'optim.lrr': not a parameter of the training config; known: ...``
            or the training config's own complaint about a value.
    """
    known = tunable_paths(train)
    for path, param in space.items():
        if path in NOT_TUNABLE:
            raise ConfigError(
                f"space '{path}': not a hyper-parameter (what is trained, names and places are "
                "fixed; a study tunes one model family, its options as model.config.<option>)"
            )
        if path.startswith("model.config."):
            options = family_options(train.model.family)
            option = path.removeprefix("model.config.")
            if option not in options:
                raise ConfigError(
                    f"space '{path}': the {train.model.family} family has no option "
                    f"{option!r}; its options: {', '.join(sorted(options))}"
                )
        elif path not in known:
            raise ConfigError(
                f"space '{path}': not a parameter of the training config; known: "
                f"{', '.join(p for p in known if not p.startswith('model.config.'))}, "
                f"model.config.<{train.model.family} option>"
            )
        for value in param.probe_values():
            try:
                apply_params(train, {path: value})
            except ConfigError as exc:
                raise ConfigError(
                    f"space '{path}': the training config refuses {_choice_text(value)} ({exc})"
                ) from None


def apply_params(
    train: TrainConfig, params: dict[str, Any], *, updates: dict[str, Any] | None = None
) -> TrainConfig:
    """``train`` with the dotted ``params`` set (and top-level ``updates``, e.g. name, output).

    Raises:
        ConfigError: a value the training config refuses (one line, its key named).
    """
    data = train.model_dump(mode="json", exclude_unset=True)
    # unset sections are filled with their defaults only where a parameter lands in them
    for path, value in params.items():
        parts = path.split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    data.update(updates or {})
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "training config")) from None
    except TwinforgeError as exc:
        raise ConfigError(f"training config: {exc}") from None
