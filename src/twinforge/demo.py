"""The end-to-end demo behind ``make demo``: the whole chain on the embedded defaults.

The chain, in ``workdir``::

    1. Geant4 training campaign   siw detector, e- log-uniform in energy (Sobol), Dask workers
    2. Geant4 reference campaign  the same space, another name and seed: held out for validation
    3. merge, register, verify    both campaigns -> one HDF5 file each, datasets in the catalogue
    4. train                      the fastest-converging family (VAE) for a few minutes
    5. validate                   the model sampled at the reference's conditions -> report.html
    6. export ONNX                the sampling graph, for C++ / ONNX Runtime users
    7. benchmark                  time per shower (torch, ONNX Runtime) against Geant4
    8. RO-Crate                   the training dataset, the model and the evaluation

Every size lives in a :class:`DemoProfile`: :data:`QUICK` (``make demo``, about 10 minutes on
2 cores, modest quality) and :data:`FULL` (``twinforge demo --full``, the realistic run: hours).
Tests shrink a profile further (and swap the simulator with ``overrides``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twinforge.campaign import CampaignConfig, CampaignProgress, merge_campaign, run_campaign
from twinforge.catalog import Catalog, export_rocrate
from twinforge.errors import ConfigError, TwinforgeError
from twinforge.showers import ShowerFile

__all__ = [
    "FULL",
    "FULL_MODEL",
    "MODEL_SETTINGS",
    "QUICK",
    "DemoProfile",
    "DemoResult",
    "run_demo",
]

log = logging.getLogger(__name__)

Progress = Callable[[str, int | None, int | None], None]
"""``on_progress(what, done, total)``; ``done``/``total`` are None when there is no count."""

#: Name of the training campaign (the reference campaign appends ``-reference``).
CAMPAIGN_NAME = "demo-siw-electrons"

#: Model configuration and learning rate per family, as in ``examples/train/*.yaml``.
MODEL_SETTINGS: dict[str, tuple[dict[str, Any], float]] = {
    "vae": ({"latent_dim": 10, "hidden": [100, 50]}, 1e-3),  # Par04 size: vae-par04.yaml
    "flow": ({"shape_marginal_bins": 16}, 1e-3),
    "flow-matching": (
        {"hidden": 512, "blocks": 4, "steps": 16, "solver": "midpoint", "energy_network": True},
        1e-3,
    ),
    "gan": ({"channels": 8, "critic_channels": 8, "hidden": 128}, 2e-4),
}

#: The family of ``twinforge demo --full``: in docs/benchmarks.md the two-stage flow matching
#: and the flow share the best energy response and high-level AUC (no family reached the
#: low-level AUC target on a CPU budget); flow matching exports and samples faster.
FULL_MODEL = "flow-matching"


@dataclass(frozen=True)
class DemoProfile:
    """Every size of the demo chain. Energies in MeV, durations in minutes or seconds.

    Attributes:
        name: ``quick`` or ``full`` (or a test's own).
        train_events: showers of the training campaign.
        reference_events: showers of the held-out reference campaign (at least 2 x 724 for
            an FPD noise floor on the siw readout: each half needs twice the 362 features).
        energy_min: lowest incident energy, MeV (log-uniform up to ``energy_max``).
        energy_max: highest incident energy, MeV.
        events_per_job: showers per campaign job.
        workers: Dask workers (with the default executor).
        family: model family to train.
        model_config: the family's configuration.
        transform: feature transform (``log``, ``logit``, ``layers``).
        dequantize: fill empty voxels with noise below the threshold (``transform.dequantize``).
        lr: learning rate.
        batch_size: training batch size.
        max_steps: optimiser steps at most.
        max_minutes: training wall-clock budget, minutes (None: no budget).
        patience: epochs without validation improvement before stopping.
        classifier_budget: the classifiers' named budget (``quick``: not comparable;
            ``challenge``: the CaloChallenge protocol).
        classifier_hidden: hidden widths of both validation classifiers (None: the suite's).
        classifier_epochs: epochs of both classifiers (None: the budget's).
        energy_bins: log-spaced incident-energy bins of the validation.
        bench_batch_sizes: showers per call in the benchmark.
        bench_backends: ``torch`` and/or ``onnx``.
        bench_geant4_showers: Geant4 showers timed in the benchmark (0: no speed-up).
        bench_energy: incident energy of the benchmark, MeV.
        bench_budget_s: timed seconds per benchmark configuration.
        bench_isolate: each benchmark configuration in a fresh process (honest peak memory).
        xsuite_points: points of the accelerator campaign (Xsuite FODO channel; 0: none).
        adaptive_points: simulations of the adaptive campaign (Xsuite transfer line, its beam
            size learnt where the surrogate is least sure; 0: none), compared with Sobol.
        adaptive_test_points: the independent test grid of that comparison (each point
            tracked with 10 000 particles).
        duration: what the profile takes on 2 cores, in words.
    """

    name: str = "quick"
    train_events: int = 1600
    reference_events: int = 1500
    energy_min: float = 1_000.0
    energy_max: float = 16_000.0
    events_per_job: int = 50
    workers: int = 2
    family: str = "vae"
    model_config: Mapping[str, Any] = field(default_factory=lambda: dict(MODEL_SETTINGS["vae"][0]))
    transform: str = "layers"
    dequantize: bool = False
    lr: float = 1e-3
    batch_size: int = 128
    max_steps: int = 800
    max_minutes: float | None = 3.0
    patience: int = 20
    classifier_budget: str = "quick"
    classifier_hidden: tuple[int, ...] | None = (512, 512)
    classifier_epochs: int | None = None
    energy_bins: int = 4
    bench_batch_sizes: tuple[int, ...] = (1, 100, 1000)
    bench_backends: tuple[str, ...] = ("torch", "onnx")
    bench_geant4_showers: int = 3
    bench_energy: float = 10_000.0
    bench_budget_s: float = 2.0
    bench_isolate: bool = True
    xsuite_points: int = 256
    adaptive_points: int = 40
    adaptive_test_points: int = 300
    duration: str = "about 10 minutes on 2 cores"

    def replace(self, **changes: Any) -> DemoProfile:
        """A copy with ``changes`` (field names), each checked against the field's type.

        Raises:
            ConfigError: unknown field or a value of the wrong type.
        """
        from pydantic import TypeAdapter, ValidationError

        hints = typing.get_type_hints(DemoProfile)
        checked = {}
        for key, value in changes.items():
            if key not in hints:
                names = ", ".join(f.name for f in dataclasses.fields(self))
                raise ConfigError(f"demo profile: unknown setting {key!r} (settings: {names})")
            try:
                checked[key] = TypeAdapter(hints[key]).validate_python(value, strict=False)
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise ConfigError(f"demo profile: {key}={value!r}: {reason}") from None
        return dataclasses.replace(self, **checked)

    def with_texts(self, items: Mapping[str, str]) -> DemoProfile:
        """A copy with settings given as YAML text (``{"max_steps": "50"}``, lists as
        ``"[1, 100]"``, ``"null"`` for None)."""
        values = {}
        for key, text in items.items():
            try:
                values[key] = yaml.safe_load(text)
            except yaml.YAMLError:
                raise ConfigError(f"demo profile: {key}={text!r} is not a YAML value") from None
        return self.replace(**values)

    def scaled(self, train_events: int) -> DemoProfile:
        """A copy with ``train_events`` training showers and the reference scaled alike."""
        ratio = self.reference_events / self.train_events
        return self.replace(
            train_events=train_events, reference_events=max(1, round(train_events * ratio))
        )


#: ``make demo``: small enough for about 10 minutes on 2 cores; the quality is modest.
QUICK = DemoProfile()

#: ``twinforge demo --full``: the realistic run (the training set of docs/benchmarks.md).
FULL = DemoProfile(
    name="full",
    train_events=20_000,
    reference_events=10_000,
    energy_max=64_000.0,
    events_per_job=100,
    family=FULL_MODEL,
    model_config=dict(MODEL_SETTINGS[FULL_MODEL][0]),
    dequantize=True,
    lr=MODEL_SETTINGS[FULL_MODEL][1],
    batch_size=256,
    max_steps=3000,
    max_minutes=35.0,
    patience=10,
    classifier_budget="challenge",
    classifier_hidden=None,
    classifier_epochs=None,
    energy_bins=6,
    bench_batch_sizes=(1, 100, 10_000),
    bench_geant4_showers=5,
    bench_budget_s=3.0,
    duration="about 2.5 hours on 2 cores (campaigns ~80 min, training ~35 min, validation ~20 min)",
)


@dataclass
class DemoResult:
    """What the demo produced: paths, catalogue ids, figures, and wall time per step (s)."""

    workdir: Path
    catalog: Path
    profile: DemoProfile = QUICK
    shower_file: Path | None = None
    reference_file: Path | None = None
    dataset_id: str | None = None
    reference_id: str | None = None
    model_dir: Path | None = None
    model_id: str | None = None
    report: Path | None = None
    evaluation_id: str | None = None
    onnx: Path | None = None
    bench_json: Path | None = None
    bench_plot: Path | None = None
    bench_id: str | None = None
    crate: Path | None = None
    crates: dict[str, Path] = field(default_factory=dict)
    xsuite_file: Path | None = None
    xsuite_id: str | None = None
    surrogate_dir: Path | None = None
    surrogate_id: str | None = None
    steps: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the chain
def run_demo(
    workdir: str | Path = "demo-output",
    *,
    profile: DemoProfile = QUICK,
    fresh: bool = True,
    on_step: Callable[[str], None] | None = None,
    on_progress: Progress | None = None,
    overrides: dict[str, Any] | None = None,
) -> DemoResult:
    """Run the demo chain in ``workdir`` (emptied first when ``fresh``); return what it made.

    Args:
        workdir: directory of every output; refused when it holds files and is not a demo's.
        profile: every size of the chain (:data:`QUICK`, :data:`FULL` or a smaller copy).
        fresh: empty ``workdir`` first (only a demo directory).
        on_step: called with each step's name as it starts.
        on_progress: called as ``on_progress(what, done, total)`` within long steps.
        overrides: campaign config keys for both campaigns, e.g. ``{"simulator":
            "synthetic-test", "detector": "tiny", "executor": {"kind": "local"}}`` for a quick
            smoke run.
    """
    workdir = _prepare_workdir(Path(workdir), fresh=fresh)
    result = DemoResult(workdir=workdir, catalog=workdir / "catalog.sqlite", profile=profile)
    train_cfg, ref_cfg = _campaign_configs(workdir, profile, overrides or {})
    progress = on_progress or (lambda _what, _done, _total: None)

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        log.debug("demo step: %s", name)  # the CLI announces steps itself
        if on_step:
            on_step(name)
        t0 = time.perf_counter()
        yield
        result.steps[name] = time.perf_counter() - t0

    simulator = train_cfg.make_simulator().code()["name"]
    where = f"{train_cfg.simulator.options.get('detector')}, {train_cfg.executor.kind}"
    with Catalog.open(result.catalog) as catalog:
        with step(f"{simulator} training campaign: {train_cfg.total_points} showers ({where})"):
            report = _campaign(catalog, train_cfg, progress)
            result.figures["showers_per_second"] = report.points / report.seconds
            result.figures["executor"] = report.executor
        with step(f"{simulator} reference campaign: {ref_cfg.total_points} showers (held out)"):
            _campaign(catalog, ref_cfg, progress)
        with step("merge shards and register the datasets"):
            result.dataset_id, result.shower_file = _merge(catalog, train_cfg)
            result.reference_id, result.reference_file = _merge(catalog, ref_cfg)
        with step("verify checksums"):
            _verify(catalog, [result.dataset_id, result.reference_id])
        with step(_train_step_name(profile)):
            _train(catalog, result, progress)
        with step("validate against the reference (report.html)"):
            _validate(catalog, result, progress)
        with step("export ONNX"):
            result.onnx = _export(result)
        with step("benchmark against Geant4" if profile.bench_geant4_showers else "benchmark"):
            _bench(catalog, result, progress)
        if profile.xsuite_points:
            with step(f"Xsuite campaign: {profile.xsuite_points} points (FODO channel)"):
                _xsuite(catalog, result, progress, (overrides or {}).get("executor"))
        if profile.adaptive_points:
            with step(f"adaptive Xsuite campaign: {profile.adaptive_points} points, against Sobol"):
                _adaptive(catalog, result, progress, (overrides or {}).get("executor"))
        with step("export RO-Crate"):
            _crates(catalog, result)
    _shower_figures(result)
    _notes(result, train_cfg)
    return result


def _train_step_name(profile: DemoProfile) -> str:
    budget = f", {profile.max_minutes:g} min" if profile.max_minutes else ""
    return f"train {profile.family}: at most {profile.max_steps} steps{budget}"


def _prepare_workdir(workdir: Path, *, fresh: bool) -> Path:
    """Create ``workdir`` (emptied when ``fresh``); refuse a foreign one."""
    if workdir.exists() and not workdir.is_dir():
        raise TwinforgeError(f"{workdir}: exists and is not a directory; choose another --workdir")
    if fresh and workdir.exists():
        if not (workdir / ".twinforge-demo").exists() and any(workdir.iterdir()):
            raise TwinforgeError(
                f"{workdir}: exists and is not a demo directory; choose another --workdir"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".twinforge-demo").touch()
    (workdir / "configs").mkdir(exist_ok=True)
    return workdir


def _write_config(workdir: Path, name: str, data: Mapping[str, Any]) -> None:
    """Keep every configuration the demo used in ``workdir/configs/NAME.yaml``."""
    (workdir / "configs" / f"{name}.yaml").write_text(yaml.safe_dump(dict(data), sort_keys=False))


def _campaign_configs(
    workdir: Path, profile: DemoProfile, overrides: Mapping[str, Any]
) -> tuple[CampaignConfig, CampaignConfig]:
    """The training and the reference campaign (same space, other name and seeds)."""
    base: dict[str, Any] = {
        "kind": "campaign",
        "simulator": {"name": "geant4", "detector": "siw", "physics": "auto"},
        "space": {
            "particle": ["e-"],
            "energy": {"min": profile.energy_min, "max": profile.energy_max, "scale": "log"},
        },
        "points_per_job": profile.events_per_job,
        "executor": {"kind": "dask", "workers": profile.workers},
        "output_dir": str(workdir.resolve() / "campaigns" / "{name}"),
    }
    roles = {
        "training-campaign": (CAMPAIGN_NAME, profile.train_events, 2026, 1),
        "reference-campaign": (f"{CAMPAIGN_NAME}-reference", profile.reference_events, 2027, 2),
    }
    configs = []
    for role, (name, events, seed, sampler_seed) in roles.items():
        data = {
            **base,
            "name": name,
            "total_points": events,
            "seed": seed,
            "sampler": {"kind": "sobol", "seed": sampler_seed},
            **overrides,
        }
        config = CampaignConfig.model_validate(data)
        _write_config(workdir, role, config.model_dump(mode="json"))
        configs.append(config)
    return configs[0], configs[1]


def _campaign(catalog: Catalog, config: CampaignConfig, progress: Progress) -> Any:
    """Run one campaign to completion (or raise with the first failure)."""

    def update(p: CampaignProgress) -> None:
        progress(f"{config.name}: jobs", p.done, p.total_jobs)

    report = run_campaign(config, catalog, on_progress=update)
    if not report.complete:
        key, error = next(iter(report.failed.items()))
        raise TwinforgeError(f"demo campaign {config.name} failed: {key}: {error}")
    return report


def _merge(catalog: Catalog, config: CampaignConfig) -> tuple[str, Path]:
    """Merge a campaign's shards, register the dataset; return its ID and file."""
    dataset = merge_campaign(catalog, config)
    return dataset.global_id, Path(catalog.files(dataset.global_id)[0].path)


def _verify(catalog: Catalog, dataset_ids: list[str | None]) -> None:
    """Re-hash every file of the datasets; raise on the first mismatch."""
    for dataset_id in dataset_ids:
        problems = [r for r in catalog.verify(dataset_id) if not r.ok]
        if problems:
            bad = problems[0]
            raise TwinforgeError(f"verification failed: {bad.path}: {bad.status}")


# --------------------------------------------------------------------------- model stages
def _train(catalog: Catalog, result: DemoResult, progress: Progress) -> None:
    """Train the profile's family on the training file into ``workdir/models/NAME``."""
    from twinforge.config import validate_config
    from twinforge.training.train import TrainConfig, run_training

    p = result.profile
    assert result.shower_file is not None
    data = {
        "kind": "train",
        "name": f"demo-{p.family}",
        "data": {"files": [str(result.shower_file)], "val_fraction": 0.1},
        "model": {"family": p.family, "config": dict(p.model_config)},
        "transform": {"kind": p.transform, "dequantize": p.dequantize},
        "optim": {
            "lr": p.lr,
            "batch_size": p.batch_size,
            "max_steps": p.max_steps,
            "max_minutes": p.max_minutes,
            "patience": p.patience,
        },
        "seed": 0,
        "output": str(result.workdir.resolve() / "models" / "{name}"),
    }
    config = validate_config(TrainConfig, data, "demo training config")
    _write_config(result.workdir, "train", config.model_dump(mode="json"))
    progress(f"training {p.family}", None, None)
    start = time.perf_counter()
    result.model_dir = run_training(config, catalog=catalog, quiet=True)
    seconds = time.perf_counter() - start
    record = catalog.find(config.name, "models")
    result.model_id = None if record is None else record.global_id
    _training_figures(result, seconds)


def _training_figures(result: DemoResult, seconds: float) -> None:
    """Steps, epochs, best validation loss (model provenance) and wall time (s) of training."""
    from twinforge.models import Surrogate

    assert result.model_dir is not None
    prov = Surrogate.load(result.model_dir).provenance
    result.figures["training"] = {
        "steps": prov.get("steps"),
        "epochs": prov.get("epochs"),
        "best_val_loss": prov.get("best_val_loss"),
        "seconds": seconds,
    }


def _validation_config(profile: DemoProfile) -> Any:
    """The suite's configuration with the profile's classifier size and energy bins."""
    from twinforge.validation import ClassifierConfig, ValidationConfig

    classifier: dict[str, Any] = {"budget": profile.classifier_budget}
    if profile.classifier_hidden is not None:
        classifier["hidden"] = list(profile.classifier_hidden)
    if profile.classifier_epochs is not None:
        classifier["epochs"] = profile.classifier_epochs
    from twinforge.validation.classifier import min_showers_for_classifier
    from twinforge.validation.suite import ALL_METRICS

    cls = ClassifierConfig(**classifier)
    metrics = list(ALL_METRICS)
    if profile.reference_events < min_showers_for_classifier(cls):  # tiny test profiles
        metrics = [m for m in metrics if not m.startswith("classifier")]
        log.info(
            "validation without classifiers: they need %d reference showers, the profile has %d",
            min_showers_for_classifier(cls), profile.reference_events,
        )  # fmt: skip
    return ValidationConfig(
        classifier=cls,
        high_classifier=cls,
        energy_bins=profile.energy_bins,
        metrics=metrics,
    )


def _validate(catalog: Catalog, result: DemoResult, progress: Progress) -> None:
    """Sample the model at the reference's conditions, run the suite, write the report."""
    from twinforge.validation import evaluate
    from twinforge.validation.report import headline_metrics

    assert result.reference_file is not None and result.model_dir is not None
    config = _validation_config(result.profile)
    _write_config(result.workdir, "validation", config.model_dump(mode="json"))
    outcome = evaluate(
        result.reference_file,
        result.workdir / "report",
        model=result.model_dir,
        config=config,
        catalog=catalog,
        command="twinforge demo",
        progress=lambda message: progress(f"validation: {message}", None, None),
        title=f"twinforge demo: {result.profile.family} model vs held-out Geant4 showers",
    )
    result.report = outcome.report
    result.evaluation_id = outcome.evaluation_id
    metrics = outcome.result.metrics
    overall = metrics.get("overall") or {}
    floor = (metrics.get("noise_floor") or {}).get("overall") or {}
    result.figures["validation"] = headline_metrics(metrics)
    result.figures["auc_low"] = _auc(overall, "classifier_low")
    result.figures["auc_high"] = _auc(overall, "classifier_high")
    result.figures["auc_low_floor"] = _auc(floor, "classifier_low")
    result.figures["classifier_budget"] = metrics["protocol"]["low_budget"]
    result.figures["auc_high_floor"] = _auc(floor, "classifier_high")
    result.figures["sampling_ms_per_shower"] = outcome.ms_per_shower
    result.figures["validation_showers"] = (outcome.n_reference, outcome.n_generated)


def _auc_gap(figures: Mapping[str, Any]) -> str:
    """`` (classifier AUC low 0.51 / high 0.91, where Geant4 against itself scores 0.51 /
    0.51; ...)`` for the levels whose AUC and floor are both known."""
    levels = [
        (name, figures.get(f"auc_{name}"), figures.get(f"auc_{name}_floor"))
        for name in ("low", "high")
    ]
    known = [(n, a, f) for n, a, f in levels if a is not None and f is not None]
    if not known:
        return ""
    names = " / ".join(n for n, _, _ in known)
    aucs = " / ".join(f"{a:.2f}" for _, a, _ in known)
    floors = " / ".join(f"{f:.2f}" for _, _, f in known)
    budget = figures.get("classifier_budget") or ""
    label = (
        ""
        if budget in ("challenge", "converged")
        else f"; {budget} classifier budget, NOT comparable with published figures"
    )
    return f" (classifier AUC {names} {aucs}, where Geant4 against itself scores {floors}{label})"


def _auc(block: Mapping[str, Any], key: str) -> float | None:
    value = (block.get(key) or {}).get("auc")
    return None if value is None else float(value)


def _export(result: DemoResult) -> Path:
    """The model's sampling graph as ``workdir/models/NAME.onnx``."""
    from twinforge.inference.export import export_onnx
    from twinforge.models import Surrogate

    assert result.model_dir is not None
    target = result.model_dir.with_suffix(".onnx")
    return export_onnx(Surrogate.load(result.model_dir), target, overwrite=True)


def _bench(catalog: Catalog, result: DemoResult, progress: Progress) -> None:
    """Time the model (torch, ONNX Runtime) against Geant4; JSON + plot, registered."""
    from twinforge.bench import Timing, benchmark, register, write_json, write_plot

    p = result.profile
    assert result.model_dir is not None
    bench = benchmark(
        result.model_dir,
        batch_sizes=p.bench_batch_sizes,
        backends=p.bench_backends,
        devices=["cpu"],
        timing=Timing(warmup=1, min_repeats=3, budget_s=p.bench_budget_s),
        energy=p.bench_energy,
        geant4_showers=p.bench_geant4_showers,
        isolate=p.bench_isolate,
        progress=lambda what, done, total: progress(f"benchmark: {what}", done, total),
    )
    out = result.workdir / "bench"
    out.mkdir(exist_ok=True)
    result.bench_json = write_json(bench, out / "bench.json")
    result.bench_plot = write_plot(bench, out / "bench.png")
    record = register(catalog, bench, files=[result.bench_json, result.bench_plot])
    result.bench_id = record.global_id
    result.figures.update(_bench_figures(bench))


def _bench_figures(bench: Mapping[str, Any]) -> dict[str, Any]:
    """Time per shower of the fastest backend at the largest batch, Geant4's, the speed-up."""
    rows = bench.get("results") or []
    largest = max((int(r["batch"]) for r in rows), default=0)
    candidates = [r for r in rows if int(r["batch"]) == largest]
    candidates.sort(key=lambda r: (r["backend"] != "onnx", r["median_ms_per_shower"]))
    best = candidates[0] if candidates else None
    geant4 = bench.get("geant4")
    return {
        "bench_backend": None if best is None else f"{best['backend']} {best['precision']}",
        "bench_threads": None if best is None else best.get("threads"),
        "bench_batch": largest or None,
        "model_ms_per_shower": None if best is None else best["median_ms_per_shower"],
        "speedup": None if best is None else best.get("speedup_vs_geant4"),
        "geant4_s_per_shower": None if not geant4 else geant4["median_s_per_shower"],
        "bench_energy_MeV": (bench.get("conditions") or {}).get("energy_MeV"),
    }


XSUITE_PRESET = "xsuite-fodo.yaml"


def _xsuite(catalog: Catalog, result: DemoResult, progress: Progress, executor: Any = None) -> None:
    """The accelerator campaign: the shipped Xsuite FODO example, merged and catalogued
    (``executor``: the campaigns' override, if any)."""
    from importlib.resources import files

    data = yaml.safe_load(
        files("twinforge.simulation").joinpath("presets", XSUITE_PRESET).read_text()
    )
    data |= {
        "total_points": result.profile.xsuite_points,
        "output_dir": str(result.workdir.resolve() / "campaigns" / "{name}"),
        "executor": executor or {"kind": "dask", "workers": result.profile.workers},
    }
    config = CampaignConfig.model_validate(data)
    _write_config(result.workdir, "xsuite-campaign", config.model_dump(mode="json"))
    report = _campaign(catalog, config, progress)
    result.xsuite_id, result.xsuite_file = _merge(catalog, config)
    from twinforge.results import ResultFile

    with ResultFile(result.xsuite_file) as f:
        out = f.outputs()
    stable = out["stable"].astype(bool)
    result.figures["xsuite"] = {
        "points": len(stable),
        "points_per_second": report.points / report.seconds,
        "stable_fraction": float(stable.mean()),
        "transmission_median": float(np.median(out["transmission"][stable])),
        "qx_range": [float(np.nanmin(out["qx"])), float(np.nanmax(out["qx"]))],
    }


ADAPTIVE_PRESET = "xsuite-adaptive.yaml"


def _adaptive(
    catalog: Catalog, result: DemoResult, progress: Progress, executor: Any = None
) -> None:
    """An adaptive campaign (nipv on a GP) of the transfer line's beam size, its surrogate
    fitted and catalogued, and the same budget spent on a Sobol design: both surrogates'
    RMSE on an independent test grid, and how many Sobol simulations match the adaptive one."""
    from importlib.resources import files

    from twinforge.active.study import Problem, learning_curve, sims_to_target
    from twinforge.space import SamplerConfig, sample_points
    from twinforge.surrogate import create, read_observations, rmse

    n = result.profile.adaptive_points
    data = yaml.safe_load(
        files("twinforge.simulation").joinpath("presets", ADAPTIVE_PRESET).read_text()
    )
    data["sampler"].pop("target_error", None)  # the demo spends its whole budget
    data |= {
        "total_points": n,
        "output_dir": str(result.workdir.resolve() / "campaigns" / "{name}"),
        "executor": executor or {"kind": "dask", "workers": result.profile.workers},
    }
    config = CampaignConfig.model_validate(data)
    _write_config(result.workdir, "adaptive-campaign", config.model_dump(mode="json"))
    _campaign(catalog, config, progress)
    _, merged = _merge(catalog, config)
    output = "sigma_x_end"
    observations = read_observations(merged, [output])
    model = create("gp").fit(observations)
    result.surrogate_dir = model.save(result.workdir / "models" / "adaptive-gp", overwrite=True)
    result.surrogate_id = catalog.add_model(
        "adaptive-gp", architecture="surrogate-gp", path=result.surrogate_dir,
        description=f"gp surrogate of {output} from the adaptive demo campaign",
        provenance={"surrogate": "gp", "outputs": [output], "n_points": len(observations),
                    "sources": observations.sources},
    ).global_id  # fmt: skip
    # the test grid: random points tracked with 10x the particles (truth to ~0.7 %)
    simulator = config.make_simulator()
    space = config.resolved_space
    n_test = result.profile.adaptive_test_points
    test = sample_points(space, SamplerConfig(kind="random", seed=12345), n_test)
    fine = type(simulator)(simulator.options.model_copy(update={"n_particles": 10_000}))
    truth = np.asarray(fine.run(test, seed=101).outputs[output], dtype=float)
    adaptive = rmse(model.predict(test).mean[output], truth)
    problem = Problem("xsuite-line", simulator, space, output, test, truth)
    checkpoints = sorted({*range(n // 2, 3 * n + 1, max(1, n // 4)), n})
    sobol = learning_curve(problem, "sobol", 0, checkpoints)
    at_budget = sobol.rmse[sobol.n.index(n)]
    matched = sims_to_target(sobol, adaptive)
    result.figures["adaptive"] = {
        "points": n,
        "output": output,
        "rmse_adaptive": adaptive,
        "rmse_sobol": at_budget,
        "sobol_points_to_match": matched,
        "sobol_checked_up_to": checkpoints[-1],
    }


def _crates(catalog: Catalog, result: DemoResult) -> None:
    """RO-Crates of the training dataset, the model, the evaluation and the accelerator
    dataset (files included)."""
    base = result.workdir / "crate"
    records = {"dataset": result.dataset_id, "model": result.model_id}
    records["evaluation"] = result.evaluation_id
    records["xsuite-dataset"] = result.xsuite_id
    for role, global_id in records.items():
        if global_id is not None:
            result.crates[role] = export_rocrate(catalog, global_id, base / role)
    result.crate = result.crates.get("dataset")


# --------------------------------------------------------------------------- figures, notes
def _energy_bins(lo: float, hi: float) -> np.ndarray:
    """Edges (MeV) of factor-2 energy bins from ``lo`` to ``hi`` (at most 6 bins)."""
    n = min(6, max(1, round(math.log2(hi / lo)))) if hi > lo else 1
    return np.geomspace(lo, hi, n + 1) if hi > lo else np.array([lo, hi])


def _response(path: Path, edges: np.ndarray) -> dict[str, float | None]:
    """Mean E_vis / E_inc per energy bin (label ``1-2 GeV``) of a shower file."""
    with ShowerFile(path) as f:
        cond, showers = f.read()
    ratio = showers.sum(axis=1, dtype=np.float64) / cond.energy
    out: dict[str, float | None] = {}
    for i in range(len(edges) - 1):
        last = i == len(edges) - 2
        inside = (cond.energy >= edges[i] * (1 - 1e-9)) & (
            cond.energy <= edges[i + 1] * (1 + 1e-9) if last else cond.energy < edges[i + 1]
        )
        label = f"{edges[i] / 1000:.3g}-{edges[i + 1] / 1000:.3g} GeV"
        out[label] = float(ratio[inside].mean()) if inside.any() else None
    return out


def _shower_figures(result: DemoResult) -> None:
    """Physics list and E_Si/E_inc per energy bin: Geant4 (reference) and the model."""
    assert result.shower_file is not None and result.reference_file is not None
    with ShowerFile(result.shower_file) as f:
        result.figures["physics"] = f.provenance.get("physics", "")
    edges = _energy_bins(result.profile.energy_min, result.profile.energy_max)
    result.figures["visible_fraction"] = _response(result.reference_file, edges)
    if result.report is not None and (result.report.parent / "generated.h5").exists():
        result.figures["visible_fraction_model"] = _response(
            result.report.parent / "generated.h5", edges
        )


def _notes(result: DemoResult, config: CampaignConfig) -> None:
    """What the reader should know: the simulator, the physics list, the modest quality."""
    p = result.profile
    if config.simulator.name != "geant4":
        result.notes.append(f"showers come from {config.simulator.name}, not Geant4")
    elif "datafree" in str(result.figures.get("physics")):
        result.notes.append(
            "Geant4 ran with the data-free EM physics list (no Geant4 data sets here): "
            "electromagnetic showers only; see docs/simulation.md for what differs"
        )
    if p.name != "full":
        training = result.figures.get("training") or {}
        minutes = (training.get("seconds") or 0.0) / 60
        result.notes.append(
            f"quality is modest: {p.train_events} training showers and {training.get('steps')} "
            f"steps ({minutes:.1f} min) of CPU training{_auc_gap(result.figures)}; see "
            "docs/benchmarks.md for models trained on 20k showers, and `twinforge demo --full` "
            "for the realistic run"
        )
    if not p.bench_geant4_showers:
        result.notes.append("Geant4 was not timed (bench_geant4_showers=0): no speed-up")
