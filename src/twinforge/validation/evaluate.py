"""Evaluate a model or a generated file against reference showers: metrics, report, catalogue.

:func:`evaluate` is the whole of ``twinforge validate`` as a library call: it reads the reference
file (all of it or a seeded random subset), reads the generated file or samples a model at the
reference's conditions (written to ``OUTPUT/generated.h5``), runs the suite
(:func:`~twinforge.validation.run_validation`), writes ``metrics.json`` and the self-contained
``report.html`` (:func:`~twinforge.validation.report.write_report`) and, given a catalogue,
registers the evaluation (:func:`register_evaluation`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from twinforge.detector.readout import Readout
from twinforge.errors import TwinforgeError
from twinforge.showers import Conditions, ShowerFile
from twinforge.showers.io import atomic_write_text
from twinforge.validation.suite import (
    FloorReference,
    ValidationConfig,
    ValidationResult,
    binning_difference,
    check_classifiers,
    run_validation,
)

if TYPE_CHECKING:
    from twinforge.catalog import Catalog

__all__ = ["EvaluationOutcome", "evaluate", "register_evaluation"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class EvaluationOutcome:
    """What :func:`evaluate` produced.

    Attributes:
        result: the metrics (JSON-able dict) and the observables behind them.
        report: the HTML report (None when ``evaluate(report=False)``).
        metrics: ``metrics.json``.
        reference: the reference shower file.
        generated: the generated shower file (given, or sampled into the output directory).
        model: the model directory, when one was given.
        sampled: True when the showers were generated here from ``model``.
        sampling_seconds: wall time of the sampling, s (None when nothing was sampled).
        n_reference: reference showers compared.
        n_generated: generated showers compared.
        evaluation_id: the catalogue's ``eval-N`` (None when not registered).
    """

    result: ValidationResult
    report: Path | None
    metrics: Path
    reference: Path
    generated: Path
    model: Path | None
    sampled: bool
    sampling_seconds: float | None
    n_reference: int
    n_generated: int
    evaluation_id: str | None = None

    @property
    def ms_per_shower(self) -> float | None:
        """Sampling time per generated shower, ms (None when nothing was sampled)."""
        if self.sampling_seconds is None or self.n_generated == 0:
            return None
        return 1e3 * self.sampling_seconds / self.n_generated


@dataclass
class _Sample:
    """Showers read from one file (all of them or a seeded random subset)."""

    path: Path
    readout: Readout
    conditions: Conditions
    showers: NDArray[np.float32]
    n_in_file: int
    provenance: dict[str, Any]
    threshold: float | None = None

    def info(self) -> dict[str, Any]:
        """``path``/``provenance`` (and the subset size) for the metrics' sample record."""
        info: dict[str, Any] = {"path": str(self.path), "provenance": self.provenance}
        if len(self.showers) != self.n_in_file:
            info["n_in_file"] = self.n_in_file
        return info


# --------------------------------------------------------------------------- public API
def evaluate(
    reference: str | Path,
    output: str | Path,
    *,
    generated: str | Path | None = None,
    model: str | Path | None = None,
    config: ValidationConfig | None = None,
    max_showers: int | None = None,
    seed: int | None = None,
    readout: Readout | None = None,
    catalog: Catalog | None = None,
    command: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    title: str | None = None,
    floor_reference: str | Path | None = None,
    report: bool = True,
) -> EvaluationOutcome:
    """Validate generated showers (a file, or a model sampled here) against reference showers.

    Args:
        reference: reference shower file (HDF5), e.g. Geant4.
        output: report directory: ``metrics.json``, ``report.html`` (and ``generated.h5`` when
            the model is sampled). Refused when it holds files, unless ``overwrite``.
        generated: generated shower file; optional when ``model`` is given.
        model: model directory. Without ``generated`` it is sampled once per reference shower
            at the same conditions; with it, it only names the model for the catalogue.
        config: suite configuration (default :class:`ValidationConfig`); not modified.
        max_showers: use at most this many random showers of each file.
        seed: seed of the subsets, the sampling, the splits and the classifiers; None: the
            config's ``seed``.
        readout: the binning, for files that do not store theirs (plain CaloChallenge files).
        catalog: register the evaluation there (:func:`register_evaluation`) when given.
        command: the command line recorded in the catalogue's provenance.
        overwrite: write into a non-empty ``output``.
        progress: called with a short description of each stage.
        title: the report's title (default: ``Validation: GENERATED vs REFERENCE``).
        floor_reference: a second, independent reference file (e.g. Geant4 with other seeds)
            for the noise floor at the full sample size; without it the floor compares two
            halves of the reference.
        report: write ``report.html``; False: ``metrics.json`` only (the report's figures cost
            far more than the cheap metrics: tuning trials, scaling points).

    Raises:
        TwinforgeError: missing inputs, a non-empty output, binnings that differ (the message
            names both sides and the first difference), a file without binning.
    """
    reference, output = Path(reference), Path(output)
    generated = None if generated is None else Path(generated)
    model = None if model is None else Path(model)
    if generated is None and model is None:
        raise TwinforgeError("give the generated showers (--generated FILE) or --model DIR")
    floor_path = None if floor_reference is None else Path(floor_reference)
    for what, path in (("reference", reference), ("generated", generated), ("model", model),
                       ("floor reference", floor_path)):  # fmt: skip
        if path is not None and not path.exists():
            raise TwinforgeError(f"{path}: {what} not found")
    check_output(output, overwrite=overwrite)
    cfg = with_seed(config or ValidationConfig(), seed)
    say = _announcer(progress)

    say(f"reading {reference}")
    ref = _read_sample(reference, readout, max_showers, cfg.seed)
    seconds: float | None = None
    floor = None
    if floor_path is not None and cfg.noise_floor:  # read before sampling: refuse early
        _check_pair(reference, ref.readout, floor_path)
        say(f"reading {floor_path}")
        f_sample = _read_sample(floor_path, ref.readout, max_showers, cfg.seed + 2)
        floor = FloorReference(f_sample.showers, f_sample.conditions.energy, f_sample.info())
    if generated is not None:
        _check_pair(reference, ref.readout, generated)
        say(f"reading {generated}")
        gen = _read_sample(generated, ref.readout, max_showers, cfg.seed + 1)
    else:
        assert model is not None
        check_classifiers(cfg, len(ref.showers))  # a model gives one shower per reference one
        gen, seconds = _sample_model(model, ref, output, cfg.seed, say)

    result = run_validation(
        ref.showers,
        ref.conditions.energy,
        gen.showers,
        gen.conditions.energy,
        ref.readout,
        cfg,
        progress=progress,  # the suite logs each stage itself
        reference_info=ref.info(),
        generated_info=gen.info(),
        recorded_threshold=ref.threshold,
        floor_reference=floor,
    )
    _check_particles(result, ref, gen)
    if report:
        say("writing the report")
        html: Path | None = _write_report(output, result, ref, gen, cfg.seed, title)
    else:
        atomic_write_text(output / "metrics.json", result.to_json() + "\n")
        html = None
    outcome = EvaluationOutcome(
        result=result,
        report=html,
        metrics=output / "metrics.json",
        reference=ref.path,
        generated=gen.path,
        model=model,
        sampled=generated is None,
        sampling_seconds=seconds,
        n_reference=len(ref.showers),
        n_generated=len(gen.showers),
    )
    if catalog is not None:
        outcome.evaluation_id = register_evaluation(catalog, outcome, command=command)
    return outcome


def register_evaluation(
    catalog: Catalog,
    outcome: EvaluationOutcome,
    *,
    command: str | None = None,
    mlflow: dict[str, str] | None = None,
) -> str:
    """Add the evaluation (overall metrics, noise floor, report files) to ``catalog``.

    Linked to the reference file's dataset and to the model (the one given, else the one a
    generated file records in its provenance) when the catalogue knows them; ``mlflow`` (the
    MLflow run, :meth:`twinforge.tracking.TrackedRun.link`) goes into the provenance. Sets and
    returns ``outcome.evaluation_id``.
    """
    metrics_all = outcome.result.metrics
    ref_file = _find_file(catalog, outcome.reference)
    gen_file = None if outcome.sampled else _find_file(catalog, outcome.generated)
    gen_provenance = (metrics_all.get("generated") or {}).get("provenance") or {}
    model_path = outcome.model or _model_path_from(gen_provenance)
    model_record = _find_model(catalog, model_path) if model_path is not None else None
    metrics = dict(metrics_all.get("overall") or {})
    floor = (metrics_all.get("noise_floor") or {}).get("overall")
    if floor is not None:
        metrics["noise_floor"] = floor
    provenance = {
        "command": command,
        "reference": {"path": str(outcome.reference.resolve()), "file_id": _gid(ref_file)},
        "generated": {
            "path": str(outcome.generated.resolve()),
            "file_id": _gid(gen_file),
            "sampled_here": outcome.sampled,
        },
        "model": None if model_path is None else str(model_path),
        "config": metrics_all.get("config"),
        "n_reference": outcome.n_reference,
        "n_generated": outcome.n_generated,
        "skipped": metrics_all.get("skipped"),
        "warnings": metrics_all.get("warnings"),
    }
    if mlflow is not None:
        provenance["mlflow"] = dict(mlflow)
    files: list[Path] = [outcome.metrics, *([outcome.report] if outcome.report else [])]
    if outcome.sampled:
        files.append(outcome.generated)
    ref_name = (
        f"ds-{ref_file.dataset_id}"
        if ref_file is not None and ref_file.dataset_id
        else outcome.reference.name
    )
    gen_name = model_record.name if model_record is not None else outcome.generated.name
    record = catalog.add_evaluation(
        model_id=model_record.global_id if model_record is not None else None,
        dataset_id=ref_file.dataset_id if ref_file is not None else None,
        metrics=metrics,
        description=f"{gen_name} vs {ref_name}",
        provenance=provenance,
        files=files,
    )
    outcome.evaluation_id = record.global_id
    return record.global_id


def check_output(output: Path, *, overwrite: bool) -> None:
    """Refuse a file, or a non-empty directory without ``overwrite``."""
    if output.exists() and not output.is_dir():
        raise TwinforgeError(f"{output}: exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise TwinforgeError(
            f"{output}: report directory exists and is not empty (--overwrite writes into it)"
        )


def with_seed(config: ValidationConfig, seed: int | None) -> ValidationConfig:
    """A copy of ``config`` whose suite uses ``seed`` and whose classifier seeds start there
    (``seed``, ``seed + 1``, ...; unchanged when None)."""
    config = config.model_copy(deep=True)
    if seed is not None:
        config.seed = seed
        config.classifier_seeds = [seed + k for k in range(len(config.classifier_seeds))]
    return config


# --------------------------------------------------------------------------- inputs
def _announcer(progress: Progress | None) -> Progress:
    """Pass a stage of the evaluation to ``progress`` (logged at debug level), or log it at
    info level when there is no callback (the suite does the same for its own)."""

    def say(message: str) -> None:
        if progress is not None:  # the caller shows it: once
            log.debug(message)
            progress(message)
        else:
            log.info(message)

    return say


def _check_pair(ref_path: Path, ref_readout: Readout, gen_path: Path) -> None:
    """Raise one clear error naming both files when their binnings differ."""
    with ShowerFile(gen_path) as f:
        gen_readout, gen_voxels = f.readout, f.n_voxels
    if gen_readout is not None and gen_readout != ref_readout:
        raise TwinforgeError(
            f"binning mismatch: reference {ref_path} has {ref_readout.describe()}, generated "
            f"{gen_path} has {gen_readout.describe()} "
            f"({binning_difference(ref_readout, gen_readout)})"
        )
    if gen_voxels != ref_readout.n_voxels:
        raise TwinforgeError(
            f"binning mismatch: reference {ref_path} has {ref_readout.n_voxels} voxels per "
            f"shower, generated {gen_path} has {gen_voxels}"
        )


def _read_sample(
    path: Path, readout: Readout | None, max_showers: int | None, seed: int
) -> _Sample:
    """Read a shower file whole, or a seeded random subset of ``max_showers`` events."""
    with ShowerFile(path, readout) as f:
        if f.readout is None:
            raise TwinforgeError(
                f"{path}: the file does not store its binning: give it with --binning XML"
            )
        n = f.n_events
        if n == 0:
            raise TwinforgeError(f"{path}: holds no showers")
        if max_showers is None or max_showers >= n:
            cond, showers = f.read()
        else:
            keep = np.sort(np.random.default_rng([seed, 11]).choice(n, max_showers, replace=False))
            parts, conds, start = [], [], 0
            for batch_cond, batch in f.iter_batches(8192):
                sel = keep[(keep >= start) & (keep < start + len(batch))] - start
                parts.append(batch[sel])
                conds.append(batch_cond[sel])
                start += len(batch)
            cond, showers = Conditions.concatenate(conds), np.concatenate(parts)
        return _Sample(path, f.readout, cond, showers, n, f.provenance, f.threshold)


def _sample_model(
    model: Path, ref: _Sample, output: Path, seed: int, say: Progress
) -> tuple[_Sample, float]:
    """Generate one shower per reference shower (same conditions) into OUTPUT/generated.h5.

    Returns the sample and the sampling wall time, s.
    """
    from twinforge.models import Surrogate
    from twinforge.showers import write_showers

    surrogate = Surrogate.load(model)
    readout = Readout.from_xml(surrogate.binning_xml) if surrogate.binning_xml else ref.readout
    if readout != ref.readout:
        raise TwinforgeError(
            f"binning mismatch: reference {ref.path} has {ref.readout.describe()}, model {model} "
            f"generates {readout.describe()} ({binning_difference(ref.readout, readout)})"
        )
    cond = ref.conditions
    say(f"sampling {len(cond)} showers from the {surrogate.family} model {model}")
    start = time.perf_counter()
    showers = surrogate.sample(cond.energy, cond.pdg, cond.theta, cond.phi, seed=seed)
    seconds = time.perf_counter() - start
    provenance = {
        "simulator": f"twinforge {surrogate.family} model",
        "model": str(model.resolve()),
        "seed": seed,
        "conditions_from": str(ref.path),
        "sampling": {
            "seconds": seconds,
            "ms_per_shower": 1e3 * seconds / max(len(cond), 1),
            "device": "cpu",
        },
        "model_provenance": surrogate.provenance,
    }
    output.mkdir(parents=True, exist_ok=True)
    path = output / "generated.h5"
    write_showers(path, readout, cond, showers, provenance, overwrite=True)
    return _Sample(path, readout, cond, showers, len(showers), provenance), seconds


def _check_particles(result: ValidationResult, ref: _Sample, gen: _Sample) -> None:
    """Warn (in the metrics too) when the two samples hold different particles."""
    pdg_ref = sorted(np.unique(ref.conditions.pdg).tolist())
    pdg_gen = sorted(np.unique(gen.conditions.pdg).tolist())
    if pdg_ref != pdg_gen:
        message = f"particle ids differ: reference {pdg_ref}, generated {pdg_gen}"
        log.warning(message)
        result.metrics.setdefault("warnings", []).append(message)


def _write_report(
    output: Path,
    result: ValidationResult,
    ref: _Sample,
    gen: _Sample,
    seed: int,
    title: str | None,
) -> Path:
    """``metrics.json`` and ``report.html`` into ``output``; return the HTML's path."""
    from twinforge.validation.report import ShowerSample, write_report

    return write_report(
        output,
        result,
        ref.readout,
        reference=ShowerSample.from_showers(ref.showers, seed=seed),
        generated=ShowerSample.from_showers(gen.showers, seed=seed),
        title=title or f"Validation: {gen.path.name} vs {ref.path.name}",
    )


# --------------------------------------------------------------------------- catalogue
def _gid(record: Any) -> str | None:
    return None if record is None else str(record.global_id)


def _model_path_from(provenance: dict[str, Any]) -> Path | None:
    """The model directory a generated file records (``twinforge sample`` writes it)."""
    value = provenance.get("model")
    return Path(value) if isinstance(value, str) and value else None


def _find_file(catalog: Catalog, path: Path) -> Any:
    """The catalogued file at ``path`` (same resolved path, else same size and SHA-256)."""
    from twinforge.catalog.hashing import file_digest

    resolved = path.resolve()
    records = catalog.files()
    for record in records:
        if Path(record.path) == resolved:
            return record
    size = resolved.stat().st_size
    same_size = [r for r in records if r.size_bytes == size]
    if not same_size:
        return None
    sha = file_digest(resolved).sha256
    return next((r for r in same_size if r.sha256 == sha), None)


def _find_model(catalog: Catalog, path: Path) -> Any:
    """The catalogued model whose directory is ``path``, or None."""
    resolved = path.resolve()
    for record in catalog.list("models"):
        where = getattr(record, "path", None)
        if where and Path(where) == resolved:
            return record
    return None
