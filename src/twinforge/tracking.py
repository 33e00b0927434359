"""Experiment tracking with MLflow: parameters, metrics and artefacts of train, tune, validate
and bench runs.

By default runs go to a local store under the work directory (the catalogue's directory,
``./.twinforge`` unless ``--catalog`` says otherwise): ``<workdir>/mlflow.sqlite`` with the
artefacts under ``<workdir>/mlartifacts``; no network is needed. A tracking server is given by
its ``http(s)://`` URL; when it does not answer within ``TrackingConfig.timeout_s`` one warning
line says so and the run is logged to the local store instead.

The client is ``mlflow-skinny`` (no UI); the UI is the full ``mlflow`` package
(``pip install mlflow``, then the command :meth:`TrackedRun.link` gives). Tracking never stops
the work it records: a store that cannot be opened or written costs one warning line, and the
run goes on without it. MLflow's usage telemetry is switched off unless the user has set
``MLFLOW_DISABLE_TELEMETRY`` (or ``DO_NOT_TRACK``) themselves.

Every client is an :class:`mlflow.MlflowClient` with an explicit tracking URI: nothing here sets
MLflow's global tracking URI or active run, so runs of one process (tune trials, tests) do not
interfere.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import random
import re
import shlex
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from twinforge.config import StrictModel
from twinforge.errors import ConfigError, Stopped

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger
    from mlflow import MlflowClient

__all__ = [
    "ARTIFACT_DIR",
    "ENV_URI",
    "KINDS",
    "STORE_FILE",
    "TrackedRun",
    "TrackingConfig",
    "default_workdir",
    "flatten_params",
    "metric_number",
    "sanitize_key",
    "start_run",
]

log = logging.getLogger(__name__)

KINDS: Final = ("train", "tune", "trial", "validate", "bench")
"""What a run records; stored in the ``twinforge.kind`` tag."""

STORE_FILE: Final = "mlflow.sqlite"
"""The local store's database, in the work directory."""

ARTIFACT_DIR: Final = "mlartifacts"
"""The local store's artefact root, in the work directory."""

ENV_URI: Final = "TWINFORGE_TRACKING_URI"
"""Environment variable the CLI reads for ``--tracking-uri``."""

TAG_KIND: Final = "twinforge.kind"
TAG_PARENT: Final = "mlflow.parentRunId"

# an unreachable server during a run: a few seconds per call, not MLflow's default of 7 retries
# with exponential backoff and a 120 s timeout (minutes); a user's own values are kept
_HTTP_DEFAULTS: Final = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}

_SCHEME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_KEY_BAD_RE: Final = re.compile(r"[^A-Za-z0-9_\-. /:]")
# server URLs found unreachable in this process: later runs go local at once (and stay together)
_UNREACHABLE: set[str] = set()
_LOCK = threading.Lock()


class TrackingConfig(StrictModel):
    """Where and whether runs are tracked (the ``tracking`` section of a config).

    Attributes:
        uri: None: the local store under the work directory; else an ``http(s)://`` tracking
            server URL, a ``sqlite:///`` URL, another MLflow store URI (``postgresql://...``)
            or a path (a directory that holds ``mlflow.sqlite`` and ``mlartifacts``, or an
            ``.sqlite``/``.db`` file).
        experiment: the MLflow experiment's name.
        enabled: False: nothing is logged.
        timeout_s: seconds a server URL has to answer before the run is logged locally.
    """

    uri: str | None = None
    experiment: str = Field("twinforge", min_length=1, max_length=500)
    enabled: bool = True
    timeout_s: float = Field(3.0, gt=0.0, le=600.0)

    @field_validator("uri")
    @classmethod
    def _strip_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        return value or None


def default_workdir(catalog_url: str | None) -> Path:
    """The work directory of the local store: the directory of an SQLite catalogue file
    (``--catalog``, else ``$TWINFORGE_CATALOG``, else ``./.twinforge/catalog.sqlite``), or
    ``./.twinforge`` for a server catalogue."""
    from twinforge.catalog.engine import DEFAULT_PATH, resolve_location
    from twinforge.errors import CatalogError

    fallback = Path.cwd() / DEFAULT_PATH.parent
    try:
        location = resolve_location(catalog_url)
    except CatalogError:
        return fallback
    return location.path.parent if location.path is not None else fallback


# ---------------------------------------------------------------------------- the run
class TrackedRun:
    """One MLflow run (or a no-op stand-in when tracking is off: ``run_id`` None).

    Logging never raises for a store problem: a failed call logs one warning; after a failure
    that is not about the values themselves (a server gone, a disk full) the run logs nothing
    more.
    """

    def __init__(
        self,
        client: MlflowClient | None = None,
        run_id: str | None = None,
        tracking_uri: str | None = None,
        experiment_id: str | None = None,
        ui: str | None = None,
    ) -> None:
        self._client = client
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self._ui = ui
        self._broken = False

    def __repr__(self) -> str:
        return f"TrackedRun(run_id={self.run_id!r}, tracking_uri={self.tracking_uri!r})"

    @property
    def active(self) -> bool:
        """Whether calls reach a store (False for a no-op run or after a store failure)."""
        return self.run_id is not None and self._client is not None and not self._broken

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (see :func:`flatten_params`), 100 per call to the store.

        MLflow parameters cannot change: logging a key again with another value is refused
        (one warning), with the same value it is a no-op.
        """
        if not self.active:
            return
        from mlflow.entities import Param

        flat = flatten_params(params)
        items = [Param(k, v) for k, v in flat.items()]
        for chunk in _chunks(items, _limit("MAX_PARAMS_TAGS_PER_BATCH", 100)):
            self._call("log parameters", lambda c=chunk: self._batch(params=c))

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None) -> None:
        """Log metric values at ``step`` (default 0); None, NaN and non-numbers are skipped,
        keys are sanitised (:func:`sanitize_key`)."""
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            number = metric_number(value)
            if number is None:
                continue
            items.append(Metric(sanitize_key(key), number, now, int(step or 0)))
        for chunk in _chunks(items, _limit("MAX_METRICS_PER_BATCH", 1000)):
            self._call("log metrics", lambda c=chunk: self._batch(metrics=c))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a file, or a directory's content, into the run's artefacts (under
        ``artifact_path`` when given)."""
        if not self.active:
            return
        path = Path(path)
        if not path.exists():
            log.warning("%s: not found, not logged to MLflow run %s", path, self.run_id)
            return
        assert self._client is not None
        client, run_id = self._client, self.run_id
        if path.is_dir():
            self._call(
                f"log {path}", lambda: client.log_artifacts(run_id, str(path), artifact_path)
            )
        else:
            self._call(f"log {path}", lambda: client.log_artifact(run_id, str(path), artifact_path))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags (values stringified and truncated to MLflow's limit)."""
        if not self.active:
            return
        from mlflow.entities import RunTag

        limit = _limit("MAX_TAG_VAL_LENGTH", 8000)
        items = [RunTag(sanitize_key(k), _truncate(str(v), limit)) for k, v in tags.items()]
        for chunk in _chunks(items, _limit("MAX_PARAMS_TAGS_PER_BATCH", 100)):
            self._call("set tags", lambda c=chunk: self._batch(tags=c))

    def lightning_logger(self) -> Logger | None:
        """A Lightning logger forwarding the metrics Lightning logs (``train/loss``,
        ``val/loss``, ``epoch``...) to this run at Lightning's step (the global step);
        hyper-parameters are ignored (log them with :meth:`log_params`). None for a no-op run.
        It logs on rank zero only, and never ends the run."""
        if self.run_id is None:
            return None
        return _logger_class()(self)

    def link(self) -> dict[str, str] | None:
        """The run for a catalogue record's provenance: ``run_id``, ``experiment_id``,
        ``tracking_uri`` (no password) and ``ui`` (the command that opens the local store in
        MLflow's UI, or the run's address on a server). None for a no-op run."""
        if self.run_id is None:
            return None
        return {
            "run_id": self.run_id,
            "experiment_id": str(self.experiment_id),
            "tracking_uri": str(self.tracking_uri),
            "ui": self._ui or "",
        }

    # -- internals
    def _batch(self, **entities: Any) -> None:
        assert self._client is not None and self.run_id is not None
        self._client.log_batch(self.run_id, **entities, synchronous=True)

    def _call(self, what: str, fn: Any) -> None:
        if not self.active:
            return
        try:
            fn()
        except Exception as exc:  # a tracking problem never stops the work it records
            if _about_values(exc):
                log.warning("MLflow run %s: cannot %s: %s", self.run_id, what, _first_line(exc))
                return
            self._broken = True
            log.warning(
                "MLflow run %s at %s: cannot %s (%s); nothing more is logged to it",
                self.run_id, self.tracking_uri, what, _first_line(exc),
            )  # fmt: skip

    def _end(self, status: str, error: BaseException | None = None) -> None:
        if not self.active:
            return
        assert self._client is not None and self.run_id is not None
        client, run_id = self._client, self.run_id
        if error is not None:
            text = _truncate(f"{type(error).__name__}: {_first_line(error)}", 8000)
            self._call("record the error", lambda: client.set_tag(run_id, "twinforge.error", text))
        self._call("end the run", lambda: client.set_terminated(run_id, status=status))


@contextmanager
def start_run(
    config: TrackingConfig | None,
    *,
    kind: str,
    name: str,
    workdir: Path,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[TrackedRun]:
    """Track the body as one MLflow run; yields a :class:`TrackedRun`.

    Args:
        config: where to log (None: the defaults, the local store); ``enabled=False`` yields
            a no-op run (``run_id`` None).
        kind: ``train``, ``tune``, ``trial``, ``validate`` or ``bench`` (the ``twinforge.kind``
            tag).
        name: the run's name.
        workdir: the local store's directory (see :func:`default_workdir`).
        tags: more tags.
        parent_run_id: a run of the same store to nest this one under (``mlflow.parentRunId``;
            the child goes to the parent's experiment).

    The run ends FINISHED, FAILED when the body raises (the exception propagates, its first
    line in the ``twinforge.error`` tag) or KILLED on a stop (Ctrl-C, SIGTERM). A server URL
    that does not answer within ``config.timeout_s`` is replaced by the local store (one
    warning line, once per process and URL). A store that cannot be opened gives a no-op run
    (one warning).

    Raises:
        ConfigError: an unusable URI (an in-memory SQLite database).
        ValueError: an unknown ``kind``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; expected one of {', '.join(KINDS)}")
    config = TrackingConfig() if config is None else config
    if not config.enabled:
        yield TrackedRun()
        return
    run = _open_run(config, kind=kind, name=name, workdir=Path(workdir), tags=tags or {},
                    parent_run_id=parent_run_id)  # fmt: skip
    try:
        yield run
    except BaseException as exc:
        run._end("KILLED" if isinstance(exc, KeyboardInterrupt | Stopped) else "FAILED", exc)
        raise
    run._end("FINISHED")


# ---------------------------------------------------------------------------- opening a run
@dataclass(frozen=True)
class _Target:
    """A resolved store: its URI, the artefact root of new experiments, the UI command."""

    uri: str
    artifact_location: str | None
    ui: str
    server: bool = False
    database: Path | None = None


def _local_target(database: Path, artifacts: Path | None = None) -> _Target:
    database = Path(os.path.abspath(database.expanduser()))
    artifacts = database.parent / ARTIFACT_DIR if artifacts is None else artifacts
    uri = f"sqlite:///{database.as_posix()}"
    ui = (
        f"mlflow ui --backend-store-uri {shlex.quote(uri)} "
        f"--default-artifact-root {shlex.quote(str(artifacts))}"
    )
    return _Target(uri, artifacts.as_uri(), ui, database=database)


def _resolve(uri: str | None, workdir: Path) -> _Target:
    """Where ``uri`` (a :class:`TrackingConfig` ``uri``) logs to."""
    workdir = Path(os.path.abspath(workdir.expanduser()))
    if uri is None:
        return _local_target(workdir / STORE_FILE, workdir / ARTIFACT_DIR)
    lower = uri.lower()
    if lower.startswith(("http://", "https://")):
        base = uri.rstrip("/")
        return _Target(base, None, _hide_password(base), server=True)
    if lower.startswith("sqlite:"):
        path = uri.split(":", 1)[1]
        if not path.startswith("///") or path[3:] in ("", ":memory:"):
            raise ConfigError(
                f"tracking URI {uri!r}: expected sqlite:///relative/file.sqlite or "
                "sqlite:////absolute/file.sqlite (an in-memory database keeps nothing)"
            )
        return _local_target(Path(path[3:].split("?", 1)[0]))
    if _SCHEME_RE.match(uri) and (len(uri) > 2 and uri[1] != ":"):  # not a Windows drive
        shown = _hide_password(uri)
        scheme = lower.split(":", 1)[0]
        artifacts = None if scheme == "file" else (workdir / ARTIFACT_DIR).as_uri()
        root = "" if artifacts is None else f" --default-artifact-root {shlex.quote(artifacts)}"
        return _Target(uri, artifacts, f"mlflow ui --backend-store-uri {shlex.quote(shown)}{root}")
    path = Path(uri).expanduser()
    if path.suffix.lower() in (".sqlite", ".sqlite3", ".db") or path.is_file():
        return _local_target(path)
    return _local_target(path / STORE_FILE, Path(os.path.abspath(path)) / ARTIFACT_DIR)


def _open_run(
    config: TrackingConfig,
    *,
    kind: str,
    name: str,
    workdir: Path,
    tags: Mapping[str, str],
    parent_run_id: str | None,
) -> TrackedRun:
    target = _resolve(config.uri, workdir)
    _mlflow()
    if target.server:
        local = _resolve(None, workdir)
        for key, value in _HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        with _LOCK:
            known_down = target.uri in _UNREACHABLE
        problem = "did not answer before" if known_down else _unreachable(target.uri, config)
        if problem is None:
            try:
                return _create_run(target, config, kind, name, tags, parent_run_id)
            except Exception as exc:
                problem = f"failed ({_first_line(exc)})"
        with _LOCK:
            first = target.uri not in _UNREACHABLE
            _UNREACHABLE.add(target.uri)
        (log.warning if first else log.debug)(
            "MLflow tracking server %s %s; logging to the local store %s instead",
            target.ui, problem, local.database,
        )  # fmt: skip
        target = local
    try:
        return _create_run(target, config, kind, name, tags, parent_run_id)
    except Exception as exc:
        where = target.database or _hide_password(target.uri)
        log.warning("MLflow store %s cannot be used (%s); not tracking", where, _first_line(exc))
        return TrackedRun()


def _unreachable(url: str, config: TrackingConfig) -> str | None:
    """None when the server answers ``GET /health`` (any HTTP status) within the timeout, else
    why not. The request runs in a thread so that no step (name resolution included) takes
    longer than ``config.timeout_s``."""
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=config.timeout_s):
                pass
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # it answered
        except Exception as exc:
            reason = getattr(exc, "reason", exc)
            outcome.append(f"is unreachable ({_first_line(reason)})")

    thread = threading.Thread(target=probe, name="twinforge-mlflow-probe", daemon=True)
    thread.start()
    thread.join(config.timeout_s)
    if not outcome:
        return f"did not answer within {config.timeout_s:g} s"
    return outcome[0]


def _create_run(
    target: _Target,
    config: TrackingConfig,
    kind: str,
    name: str,
    tags: Mapping[str, str],
    parent_run_id: str | None,
) -> TrackedRun:
    from mlflow import MlflowClient

    if target.database is not None:
        target.database.parent.mkdir(parents=True, exist_ok=True)
        if not target.database.exists():
            log.debug("creating the MLflow store %s", target.database)
    attempts = 1 if target.server else 4  # a server's client retries by itself
    with _store_lock(target.database):  # opening a new store creates its tables: one at a time
        client = MlflowClient(tracking_uri=target.uri)
        experiment_id = _experiment(client, config.experiment, target.artifact_location, attempts)
    if parent_run_id is not None:
        try:
            experiment_id = client.get_run(parent_run_id).info.experiment_id
        except Exception as exc:
            log.debug("parent run %s not found in %s (%s)", parent_run_id, target.uri, exc)
    from twinforge import __version__

    all_tags = {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": f"twinforge {kind}",
        "mlflow.user": _user(),
        "twinforge.version": __version__,
        TAG_KIND: kind,
        **{sanitize_key(k): _truncate(str(v), 8000) for k, v in tags.items()},
    }
    if parent_run_id is not None:
        all_tags[TAG_PARENT] = parent_run_id
    run = client.create_run(experiment_id, run_name=name, tags=all_tags)
    run_id = run.info.run_id
    ui = target.ui
    if target.server:
        ui = f"{_hide_password(target.uri)}/#/experiments/{experiment_id}/runs/{run_id}"
    log.debug("MLflow run %s (%s) in %s", run_id, name, _hide_password(target.uri))
    return TrackedRun(client, run_id, _hide_password(target.uri), experiment_id, ui)


def _experiment(
    client: MlflowClient, name: str, artifact_location: str | None, attempts: int
) -> str:
    """The experiment's ID, created (with ``artifact_location``) when missing; several
    processes may do this at once on a new store (``attempts`` tries)."""
    for attempt in range(attempts):
        try:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                return client.create_experiment(name, artifact_location=artifact_location)
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + 0.5 * random.random())  # another process creates it too
            continue
        if experiment.lifecycle_stage != "active":
            raise ConfigError(
                f"MLflow experiment {name!r} is deleted (restore it in the UI, or choose "
                "another experiment name)"
            )
        return experiment.experiment_id
    raise AssertionError("unreachable")


@contextmanager
def _store_lock(database: Path | None, wait_s: float = 120.0) -> Iterator[None]:
    """Hold ``<database>.lock`` (POSIX advisory lock) so that processes starting at once on a
    new SQLite store do not create its tables together (MLflow's migrations then fail). After
    ``wait_s`` seconds, or where there are no such locks, go on without it."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    if database is None:
        yield
        return
    with open(database.with_name(database.name + ".lock"), "a") as handle:
        deadline = time.monotonic() + wait_s
        locked = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.debug("%s stays locked; going on without the lock", handle.name)
                    break
                time.sleep(0.1)
            except OSError as exc:  # a file system without locks
                log.debug("cannot lock %s (%s)", handle.name, exc)
                break
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


_MLFLOW_READY = False


def _mlflow() -> None:
    """Import MLflow with telemetry off (unless the user chose) and quiet store creation."""
    global _MLFLOW_READY
    if _MLFLOW_READY:
        return
    if "DO_NOT_TRACK" not in os.environ:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow  # noqa: F401

    # "Creating initial MLflow database tables..." / "Updating database tables" at INFO
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    _MLFLOW_READY = True


# ---------------------------------------------------------------------------- values
def sanitize_key(key: str) -> str:
    """A metric/parameter/tag name MLflow accepts: characters other than letters, digits,
    ``_ - . / :`` and space become ``_``; at most 250 characters."""
    key = _KEY_BAD_RE.sub("_", str(key)).strip() or "_"
    return key[: _limit("MAX_ENTITY_KEY_LENGTH", 250)]


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Parameters as MLflow stores them: nested mappings flattened with ``.`` keys
    (``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``), lists of mappings or lists by index
    (``a.0.b``), lists of plain values as one JSON value (``[16, 16]``); keys sanitised
    (:func:`sanitize_key`), values stringified and truncated to MLflow's limit (6000
    characters)."""
    out: dict[str, str] = {}
    limit = _limit("MAX_PARAM_VAL_LENGTH", 6000)
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                out.update(flatten_params(value, f"{name}."))
            else:
                out[sanitize_key(name)] = "{}"
        elif _is_sequence(value) and any(isinstance(v, Mapping) or _is_sequence(v) for v in value):
            out.update(flatten_params({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            out[sanitize_key(name)] = _truncate(_param_text(value), limit)
    return out


def _param_text(value: Any) -> str:
    if _is_sequence(value):
        try:
            return json.dumps(list(value), default=str)
        except (TypeError, ValueError):
            return str(list(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # type: ignore[return-value]
    return str(value)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence | set | frozenset) and not isinstance(
        value, str | bytes | bytearray
    )


def metric_number(value: Any) -> float | None:
    """``value`` as a metric: a float, or None for None, text and NaN."""
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _limit(name: str, default: int) -> int:
    try:
        from mlflow.utils import validation

        return int(getattr(validation, name, default))
    except ImportError:
        return default


def _about_values(exc: BaseException) -> bool:
    """Whether MLflow refused the values (a parameter changed, a bad key), not the store."""
    code = getattr(exc, "error_code", None)
    return code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS")


def _first_line(exc: object) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _hide_password(uri: str) -> str:
    """``uri`` without the password of its ``user:password@`` part."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# ---------------------------------------------------------------------------- Lightning
_LOGGER_CLASS: type | None = None


def _logger_class() -> type:
    """The Lightning logger class (defined on first use: Lightning is slow to import)."""
    global _LOGGER_CLASS
    if _LOGGER_CLASS is not None:
        return _LOGGER_CLASS
    from lightning.pytorch.loggers.logger import Logger
    from lightning.pytorch.utilities import rank_zero_only

    class MLflowRunLogger(Logger):
        """Forwards Lightning's metrics to a :class:`TrackedRun` (rank zero only)."""

        def __init__(self, run: TrackedRun) -> None:
            super().__init__()
            self._run = run

        @property
        def name(self) -> str:
            return "mlflow"

        @property
        def version(self) -> str:
            return str(self._run.run_id)

        @property
        def run(self) -> TrackedRun:
            return self._run

        @rank_zero_only
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            """Ignored: the caller logs its configuration with ``TrackedRun.log_params``."""

        @rank_zero_only
        def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
            self._run.log_metrics(metrics, step=step)

    _LOGGER_CLASS = MLflowRunLogger
    return MLflowRunLogger
