"""Exceptions raised for problems a user can fix (bad input, bad config, missing files).

The CLI turns any :class:`TwinforgeError` into a one-line message and a non-zero exit code;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TwinforgeError(Exception):
    """Base class of every error caused by the user's input rather than by a bug."""


class ConfigError(TwinforgeError, ValueError):
    """A configuration file or value is invalid (unknown key, wrong type, missing file)."""


class DetectorError(TwinforgeError, ValueError):
    """A detector or readout description is invalid or does not match the data."""


class ShowerFileError(TwinforgeError, ValueError):
    """A shower file is missing, unreadable, or its content breaks the format."""


class CatalogError(TwinforgeError):
    """The catalogue cannot be opened or written, or a record is missing."""


class SimulationError(TwinforgeError):
    """A simulation cannot run as asked (unsupported particle, missing physics data)."""


class JobFailure(SimulationError):
    """A simulation program ran and failed: its exit code, the tail of its stderr, and whether
    running it again can help (a timeout may pass; a template error will always repeat)."""

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        stderr_tail: str | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.retryable = retryable

    def __reduce__(self) -> tuple[object, ...]:  # keep the fields across processes (Dask)
        return (
            _rebuild_job_failure,
            (str(self), self.exit_code, self.stderr_tail, self.retryable),
        )


def _rebuild_job_failure(
    message: str, exit_code: int | None, stderr_tail: str | None, retryable: bool
) -> JobFailure:
    return JobFailure(message, exit_code=exit_code, stderr_tail=stderr_tail, retryable=retryable)


class Stopped(BaseException):
    """A run stopped by SIGTERM (``timeout``, a batch system's end of wall time, ``kill``) where
    the same command resumes it; the CLI prints its message and exits with 143.

    Not an error, and like ``KeyboardInterrupt`` not an ``Exception``: it may be raised by a
    signal handler anywhere in the main thread, and no ``except Exception`` (a job's or a
    trial's failure handling) may take it for a failure. Clean-up for a stop catches
    ``(KeyboardInterrupt, Stopped)``.
    """


class RecordNotFound(CatalogError):
    """No record of the catalogue has the ID or name asked for."""


class CatalogUnavailable(CatalogError):
    """The catalogue's database cannot be reached or used right now (server down, locked)."""
