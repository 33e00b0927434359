"""Simulation campaigns of any installed simulator: spaces, samplers, executors (local, Dask),
resumable journal."""

from twinforge.campaign.config import CampaignConfig, SimulateConfig, SimulatorChoice, job_seed
from twinforge.campaign.executors import ExecutorConfig, JobqueueConfig, make_executor
from twinforge.campaign.runner import (
    CampaignProgress,
    CampaignReport,
    campaign_status,
    merge_campaign,
    open_campaign,
    run_campaign,
)
from twinforge.space import ParameterSpace, SamplerConfig, sample_points

__all__ = [
    "CampaignConfig",
    "CampaignProgress",
    "CampaignReport",
    "ExecutorConfig",
    "JobqueueConfig",
    "ParameterSpace",
    "SamplerConfig",
    "SimulateConfig",
    "SimulatorChoice",
    "campaign_status",
    "job_seed",
    "make_executor",
    "merge_campaign",
    "open_campaign",
    "run_campaign",
    "sample_points",
]
