"""Adaptive samplers in campaign configs: ``sampler: {kind: adaptive | xopt, ...}``.

::

    sampler:
      kind: adaptive
      objectives: {sigma_x_end: explore}        # learn these outputs over the space
      acquisition: nipv                          # nipv | variance (learn); ei | ucb (optimise)
      target_error: {sigma_x_end: 2.0e-5}        # stop once the predicted RMSE is below
    total_points: 400                            # the simulation budget
    points_per_job: 1                            # replicates of each proposed point

Each job simulates one proposed point ``points_per_job`` times (replicates give each
observation its own noise estimate). ``kind: xopt`` runs any Xopt generator by name instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from twinforge.config import StrictModel

__all__ = ["ActiveConfig", "AdaptiveSamplerConfig", "GoalsConfig", "XoptSamplerConfig"]

Goal = Literal["explore", "minimize", "maximize"]
Bound = tuple[Literal["LESS_THAN", "GREATER_THAN"], float]


class ActiveConfig(StrictModel):
    """How :class:`~twinforge.active.generator.SurrogateGenerator` chooses points."""

    kind: Literal["adaptive"] = "adaptive"
    acquisition: Literal["nipv", "variance", "ei", "ucb"] | None = Field(
        None, description="default: nipv to learn the response, ei to optimise"
    )
    surrogate: str = Field("gp", description="an installed surrogate (gp, ensemble)")
    surrogate_options: dict[str, Any] = Field(default_factory=dict)
    initial_points: PositiveInt = Field(8, description="Sobol points before the surrogate")
    candidates: PositiveInt = Field(1024, description="Sobol candidates ranked per choice")
    mc_points: PositiveInt = Field(256, description="where nipv integrates the variance")
    beta: float = Field(4.0, gt=0, description="ucb: mean + sqrt(beta) * std")
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _check(self) -> ActiveConfig:
        from twinforge.surrogate import available

        if self.surrogate not in available():
            raise ValueError(
                f"unknown surrogate {self.surrogate!r}; installed: {', '.join(available())}"
            )
        if self.acquisition in ("ei", "ucb") and self.surrogate != "gp":
            raise ValueError(f"acquisition {self.acquisition} needs the gp surrogate")
        return self


class GoalsConfig(StrictModel):
    """What a campaign's adaptive sampler is after: outputs to learn or to optimise."""

    objectives: dict[str, Goal] = Field(
        description="output -> explore (learn it everywhere), minimize or maximize"
    )
    constraints: dict[str, Bound] = Field(
        default_factory=dict, description="output -> [LESS_THAN | GREATER_THAN, bound]"
    )

    @model_validator(mode="after")
    def _goals(self) -> GoalsConfig:
        if not self.objectives:
            raise ValueError("give at least one objective (output: explore|minimize|maximize)")
        return self

    @property
    def outputs(self) -> list[str]:
        return [*self.objectives, *self.constraints]


class AdaptiveSamplerConfig(ActiveConfig, GoalsConfig):
    """``sampler: {kind: adaptive}``: twinforge's surrogate-based sampler."""

    target_error: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="stop when the surrogate's predicted RMSE of each is below (output units)",
    )

    @model_validator(mode="after")
    def _targets(self) -> AdaptiveSamplerConfig:
        for name in self.target_error:
            if name not in self.objectives:
                raise ValueError(f"target_error names {name!r}, which is not an objective")
        return self

    def active(self) -> ActiveConfig:
        return ActiveConfig(**{k: getattr(self, k) for k in ActiveConfig.model_fields})

    @property
    def label(self) -> str:
        return "adaptive"


class XoptSamplerConfig(GoalsConfig):
    """``sampler: {kind: xopt, generator: NAME, options: {...}}``: an Xopt generator."""

    kind: Literal["xopt"] = "xopt"
    generator: str = Field(description="Xopt generator name, e.g. expected_improvement")
    options: dict[str, Any] = Field(default_factory=dict, description="its options")
    initial_points: NonNegativeInt = Field(
        4, description="Sobol points before the generator (Bayesian ones need data)"
    )
    seed: NonNegativeInt = 0

    @property
    def label(self) -> str:
        return f"xopt:{self.generator}"
