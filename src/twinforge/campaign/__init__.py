"""Simulation campaigns: parameter spaces, samplers, executors (local, Dask), resumable journal."""

from twinforge.campaign.config import CampaignConfig, job_seed
from twinforge.campaign.executors import ExecutorConfig, JobqueueConfig, make_executor
from twinforge.campaign.runner import (
    CampaignProgress,
    CampaignReport,
    campaign_status,
    merge_campaign,
    open_campaign,
    run_campaign,
)
from twinforge.campaign.space import ParameterSpace, SamplerConfig, sample_conditions

__all__ = [
    "CampaignConfig",
    "CampaignProgress",
    "CampaignReport",
    "ExecutorConfig",
    "JobqueueConfig",
    "ParameterSpace",
    "SamplerConfig",
    "campaign_status",
    "job_seed",
    "make_executor",
    "merge_campaign",
    "open_campaign",
    "run_campaign",
    "sample_conditions",
]
