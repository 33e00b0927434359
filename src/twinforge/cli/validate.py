"""``twinforge validate``: compare generated showers with reference showers, write a report.

Reads both shower files (or samples a model at the reference's conditions), runs the validation
suite (:func:`twinforge.validation.run_validation`), writes ``metrics.json`` and the
self-contained ``report.html`` into the output directory and registers the evaluation in the
catalogue.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from twinforge.cli._common import catalog_option, console, err_console, options, say
from twinforge.errors import TwinforgeError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from twinforge.catalog import Catalog
    from twinforge.detector.readout import Readout
    from twinforge.showers import Conditions
    from twinforge.validation import ValidationConfig, ValidationResult

log = logging.getLogger(__name__)


@dataclass
class _Sample:
    """Showers read from one file (all of them or a seeded random subset)."""

    path: Path
    readout: Readout
    conditions: Conditions
    showers: NDArray[np.float32]
    n_in_file: int
    provenance: dict[str, Any]

    def info(self) -> dict[str, Any]:
        """``path``/``provenance`` (and the subset size) for the metrics' sample record."""
        info: dict[str, Any] = {"path": str(self.path), "provenance": self.provenance}
        if len(self.showers) != self.n_in_file:
            info["n_in_file"] = self.n_in_file
        return info


def validate(
    reference: Path = typer.Option(
        ..., "--reference", "-r", help="Reference shower file (HDF5), e.g. Geant4."
    ),
    generated: Path | None = typer.Option(
        None, "--generated", "-g", help="Generated shower file; optional with --model."
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Model directory. Without --generated, it is sampled at the reference's conditions "
        "(written to OUTPUT/generated.h5); with it, it names the model for the catalogue.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Report directory to write."),
    config: Path | None = typer.Option(
        None, "--config", help="Validation YAML (kind: validation); defaults otherwise."
    ),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Maximum epochs of both classifiers (overrides config)."
    ),
    max_showers: int | None = typer.Option(
        None, "--max-showers", min=1, help="Use at most N random showers of each file."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed of subsets, splits, classifiers and sampling."
    ),
    no_noise_floor: bool = typer.Option(
        False, "--no-noise-floor", help="Skip the reference-vs-reference noise floor."
    ),
    binning: Path | None = typer.Option(
        None,
        "--binning",
        help="CaloChallenge binning XML, for files that do not store theirs (plain "
        "CaloChallenge files).",
    ),
    catalog: str | None = catalog_option(),
    no_catalog: bool = typer.Option(
        False, "--no-catalog", help="Do not register the evaluation in the catalogue."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Write into OUTPUT even if it holds files."
    ),
) -> None:
    """Validate generated showers against reference showers: metrics.json + report.html.

    Separation powers, classifier AUCs and FPD/KPD, overall and per incident-energy bin, each
    next to its noise floor (reference half vs half); the HTML report embeds every figure.
    """
    if generated is None and model is None:
        raise TwinforgeError("give the generated showers (--generated FILE) or --model DIR")
    for what, path in (("reference", reference), ("generated", generated), ("model", model)):
        if path is not None and not path.exists():
            raise TwinforgeError(f"{path}: {what} not found")
    _check_output(output, overwrite=overwrite)
    cfg = _config(config, epochs=epochs, seed=seed, noise_floor=not no_noise_floor)
    given = _readout_from(binning) if binning is not None else None
    with _status() as status:
        ref, gen = _inputs(
            reference, generated, model, output, given, max_showers, cfg.seed, status
        )

        from twinforge.validation import run_validation
        from twinforge.validation.report import ShowerSample, write_report

        result = run_validation(
            ref.showers,
            ref.conditions.energy,
            gen.showers,
            gen.conditions.energy,
            ref.readout,
            cfg,
            progress=status,  # the suite logs each stage itself
            reference_info=ref.info(),
            generated_info=gen.info(),
        )
        _check_particles(result, ref, gen)
        _note(status, "writing the report")
        html = write_report(
            output,
            result,
            ref.readout,
            reference=ShowerSample.from_showers(ref.showers, seed=cfg.seed),
            generated=ShowerSample.from_showers(gen.showers, seed=cfg.seed),
            title=f"Validation: {gen.path.name} vs {ref.path.name}",
        )
        evaluation = None
        if not no_catalog:
            from twinforge.catalog import Catalog

            with Catalog.open(catalog) as cat:
                evaluation = _register(
                    cat, result, ref, gen, model, output, sampled=generated is None
                )
    _print_summary(result, html, evaluation)


def _inputs(
    reference: Path,
    generated: Path | None,
    model: Path | None,
    output: Path,
    given: Readout | None,
    max_showers: int | None,
    seed: int,
    status: Status,
) -> tuple[_Sample, _Sample]:
    """Read the reference, then read the generated file or sample the model."""
    _note(status, f"reading {reference}")
    ref = _read_sample(reference, given, max_showers, seed)
    if generated is not None:
        _check_pair(reference, ref.readout, generated)
        _note(status, f"reading {generated}")
        return ref, _read_sample(generated, ref.readout, max_showers, seed + 1)
    assert model is not None
    return ref, _sample_model(model, ref, output, seed, status)


# --------------------------------------------------------------------------- inputs
Status = Callable[[str], None]


@contextmanager
def _status() -> Iterator[Status]:
    """A transient spinner on stderr showing the current stage (nothing under ``--quiet``)."""
    if options.quiet:
        yield lambda _message: None
        return
    with err_console.status("starting") as spinner:
        yield lambda message: spinner.update(message)


def _note(status: Status, message: str) -> None:
    """Log a stage of this command (the suite logs its own) and show it in the spinner."""
    log.info(message)
    status(message)


def _check_output(output: Path, *, overwrite: bool) -> None:
    """Refuse a file, or a non-empty directory without ``--overwrite``."""
    if output.exists() and not output.is_dir():
        raise TwinforgeError(f"{output}: exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise TwinforgeError(
            f"{output}: report directory exists and is not empty (--overwrite writes into it)"
        )


def _config(
    path: Path | None, *, epochs: int | None, seed: int | None, noise_floor: bool
) -> ValidationConfig:
    """The validation config from YAML (or defaults) with the command-line overrides."""
    from twinforge.config import load_config
    from twinforge.validation import ValidationConfig

    cfg = load_config(path, ValidationConfig) if path is not None else ValidationConfig()
    assert isinstance(cfg, ValidationConfig)
    if epochs is not None:
        cfg.classifier.epochs = epochs
        cfg.high_classifier.epochs = epochs
    if seed is not None:
        cfg.seed = seed
        cfg.classifier.seed = seed
        cfg.high_classifier.seed = seed
    if not noise_floor:
        cfg.noise_floor = False
    return cfg


def _readout_from(path: Path) -> Readout:
    from twinforge.detector.readout import Readout

    return Readout.from_xml(path)


def _stored_readout(path: Path) -> tuple[Readout | None, int]:
    """The binning a shower file stores (None if it does not) and its voxels per shower."""
    from twinforge.showers import ShowerFile

    with ShowerFile(path) as f:
        return f.readout, f.n_voxels


def _check_pair(ref_path: Path, ref_readout: Readout, gen_path: Path) -> None:
    """Raise one clear error naming both files when their binnings differ."""
    gen_readout, gen_voxels = _stored_readout(gen_path)
    if gen_readout is not None and gen_readout != ref_readout:
        raise TwinforgeError(
            f"binning mismatch: reference {ref_path} has {ref_readout.describe()}, generated "
            f"{gen_path} has {gen_readout.describe()} ({_difference(ref_readout, gen_readout)})"
        )
    if gen_voxels != ref_readout.n_voxels:
        raise TwinforgeError(
            f"binning mismatch: reference {ref_path} has {ref_readout.n_voxels} voxels per "
            f"shower, generated {gen_path} has {gen_voxels}"
        )


def _difference(a: Readout, b: Readout) -> str:
    """The first difference of two binnings, in words."""
    if a.n_layers != b.n_layers:
        return f"{a.n_layers} vs {b.n_layers} layers"
    for i, (la, lb) in enumerate(zip(a.layers, b.layers, strict=True)):
        if la != lb:
            return (
                f"layer {i}: {la.n_alpha} vs {lb.n_alpha} alpha bins, r edges "
                f"{[round(float(v), 4) for v in la.r_edges]} vs "
                f"{[round(float(v), 4) for v in lb.r_edges]} mm"
            )
    return "same layers"


def _read_sample(
    path: Path, readout: Readout | None, max_showers: int | None, seed: int
) -> _Sample:
    """Read a shower file whole, or a seeded random subset of ``max_showers`` events."""
    import numpy as np

    from twinforge.showers import Conditions, ShowerFile

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
        return _Sample(path, f.readout, cond, showers, n, f.provenance)


def _sample_model(model: Path, ref: _Sample, output: Path, seed: int, status: Status) -> _Sample:
    """Generate one shower per reference shower (same conditions); write OUTPUT/generated.h5."""
    from twinforge.detector.readout import Readout
    from twinforge.models import Surrogate
    from twinforge.showers import write_showers

    surrogate = Surrogate.load(model)
    readout = Readout.from_xml(surrogate.binning_xml) if surrogate.binning_xml else ref.readout
    if readout != ref.readout:
        raise TwinforgeError(
            f"binning mismatch: reference {ref.path} has {ref.readout.describe()}, model {model} "
            f"generates {readout.describe()} ({_difference(ref.readout, readout)})"
        )
    cond = ref.conditions
    _note(status, f"sampling {len(cond)} showers from the {surrogate.family} model {model}")
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
    return _Sample(path, readout, cond, showers, len(showers), provenance)


def _check_particles(result: ValidationResult, ref: _Sample, gen: _Sample) -> None:
    """Warn (in the metrics too) when the two samples hold different particles."""
    import numpy as np

    pdg_ref = sorted(np.unique(ref.conditions.pdg).tolist())
    pdg_gen = sorted(np.unique(gen.conditions.pdg).tolist())
    if pdg_ref != pdg_gen:
        message = f"particle ids differ: reference {pdg_ref}, generated {pdg_gen}"
        log.warning(message)
        result.metrics.setdefault("warnings", []).append(message)


# --------------------------------------------------------------------------- catalogue
def _register(
    cat: Catalog,
    result: ValidationResult,
    ref: _Sample,
    gen: _Sample,
    model: Path | None,
    output: Path,
    *,
    sampled: bool,
) -> str:
    """Add the evaluation (overall metrics, noise floor, report files); return its ID."""
    ref_file = _find_file(cat, ref.path)
    gen_file = _find_file(cat, gen.path) if not sampled else None
    model_path = model or _model_path_from(gen.provenance)
    model_record = _find_model(cat, model_path) if model_path is not None else None
    metrics = dict(result.metrics.get("overall") or {})
    floor = (result.metrics.get("noise_floor") or {}).get("overall")
    if floor is not None:
        metrics["noise_floor"] = floor
    provenance = {
        "command": " ".join(["twinforge", *sys.argv[1:]]),
        "reference": {"path": str(ref.path.resolve()), "file_id": _gid(ref_file)},
        "generated": {
            "path": str(gen.path.resolve()),
            "file_id": _gid(gen_file),
            "sampled_here": sampled,
        },
        "model": None if model_path is None else str(model_path),
        "config": result.metrics.get("config"),
        "n_reference": len(ref.showers),
        "n_generated": len(gen.showers),
        "skipped": result.metrics.get("skipped"),
        "warnings": result.metrics.get("warnings"),
    }
    files: list[Any] = [output / "metrics.json", output / "report.html"]
    if sampled:
        files.append(gen.path)
    ref_name = f"ds-{ref_file.dataset_id}" if ref_file and ref_file.dataset_id else ref.path.name
    gen_name = model_record.name if model_record is not None else gen.path.name
    record = cat.add_evaluation(
        model_id=model_record.global_id if model_record is not None else None,
        dataset_id=ref_file.dataset_id if ref_file is not None else None,
        metrics=metrics,
        description=f"{gen_name} vs {ref_name}",
        provenance=provenance,
        files=files,
    )
    return record.global_id


def _gid(record: Any) -> str | None:
    return None if record is None else str(record.global_id)


def _model_path_from(provenance: dict[str, Any]) -> Path | None:
    """The model directory a generated file records (``twinforge sample`` writes it)."""
    value = provenance.get("model")
    return Path(value) if isinstance(value, str) and value else None


def _find_file(cat: Catalog, path: Path) -> Any:
    """The catalogued file at ``path`` (same resolved path, else same size and SHA-256)."""
    from twinforge.catalog.hashing import file_digest

    resolved = path.resolve()
    records = cat.files()
    for record in records:
        if Path(record.path) == resolved:
            return record
    size = resolved.stat().st_size
    same_size = [r for r in records if r.size_bytes == size]
    if not same_size:
        return None
    sha = file_digest(resolved).sha256
    return next((r for r in same_size if r.sha256 == sha), None)


def _find_model(cat: Catalog, path: Path) -> Any:
    """The catalogued model whose directory is ``path``, or None."""
    resolved = path.resolve()
    for record in cat.list("models"):
        where = getattr(record, "path", None)
        if where and Path(where) == resolved:
            return record
    return None


# --------------------------------------------------------------------------- summary
def _print_summary(result: ValidationResult, html: Path, evaluation: str | None) -> None:
    """Headline metrics beside their noise floor, what was skipped, where the report is."""
    if options.quiet:
        return
    from rich.table import Table

    from twinforge.validation.report import headline_metrics

    table = Table(title="Validation summary", title_justify="left")
    table.add_column("Metric")
    table.add_column("Generated vs reference", justify="right")
    table.add_column("Noise floor", justify="right")
    for label, value, floor in headline_metrics(result.metrics):
        table.add_row(label, value, floor)
    console.print(table)
    for item in result.metrics.get("skipped") or []:
        if item.get("scope") in ("overall", "noise floor"):
            where = "" if item["scope"] == "overall" else f" ({item['scope']})"
            console.print(
                f"not computed: {item.get('metric')}{where}: {item.get('reason')}", highlight=False
            )
    if evaluation is not None:
        say(f"registered evaluation {evaluation}")
    say(f"wrote {html}")
