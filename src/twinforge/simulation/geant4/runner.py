"""Run Geant4 in a fresh process (multiprocessing "spawn"), for isolation.

Geant4 allows one run manager per process and a fatal Geant4 error aborts the whole process.
:func:`simulate_in_subprocess` therefore builds the session in a new interpreter, simulates,
returns the showers and exits: the caller's process never holds a run manager and survives a
Geant4 abort (as a :class:`SimulationError`). Use it from tests, the CLI and executors that
simulate several detectors; Dask workers use the per-process session
(:func:`twinforge.simulation.geant4.session.get_session`) instead.

Scripts that call it must guard their entry point with ``if __name__ == "__main__":`` (the
"spawn" start method imports the main module in the child).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from twinforge.detector import DetectorConfig
from twinforge.errors import SimulationError
from twinforge.showers.conditions import Conditions
from twinforge.simulation.geant4.scoring import EventTotals
from twinforge.simulation.geant4.session import Geant4Options

__all__ = ["SimulationResult", "call_in_subprocess", "simulate_in_subprocess"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SimulationResult:
    """What one Geant4 run returns.

    Attributes:
        showers: voxel energies ``(N, V)`` float32, MeV.
        totals: per-shower energy bookkeeping (MeV).
        provenance: the session's provenance dictionary.
        root_path: the ROOT file written, if one was asked for.
    """

    showers: NDArray[np.float32]
    totals: EventTotals
    provenance: dict[str, Any]
    root_path: Path | None = None


def call_in_subprocess(
    func: Callable[..., T], /, *args: Any, timeout: float | None = None, **kwargs: Any
) -> T:
    """Call ``func(*args, **kwargs)`` in a fresh "spawn" process and return its result.

    ``func`` must be a module-level function and its arguments and result picklable. An
    exception raised by ``func`` is re-raised here.

    Raises:
        SimulationError: the process died without an answer (e.g. a fatal Geant4 error) or
            ran longer than ``timeout`` seconds.
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    level = logging.getLogger().getEffectiveLevel()
    process = ctx.Process(
        target=_child, args=(sender, level, func, args, kwargs), name="twinforge-geant4"
    )
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise SimulationError(
                f"the Geant4 subprocess gave no answer within {timeout} s and was stopped"
            )
        try:
            status, payload = receiver.recv()
        except EOFError:
            process.join()
            raise SimulationError(
                f"the Geant4 subprocess died (exit code {process.exitcode}) without a result; "
                "a fatal Geant4 error aborts the process: see its output on stderr"
            ) from None
        except Exception as exc:  # a result or exception that does not unpickle here
            raise SimulationError(f"cannot read the Geant4 subprocess result ({exc!r})") from None
    finally:
        receiver.close()
        if process.is_alive():
            process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join()
    if process.exitcode not in (0, None):
        log.warning("the Geant4 subprocess exited with code %s", process.exitcode)
    if status == "error":
        raise payload
    return payload  # type: ignore[no-any-return]


def _child(
    sender: multiprocessing.connection.Connection,
    level: int,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    logging.basicConfig(level=level, format="%(processName)s %(name)s %(levelname)s: %(message)s")
    try:
        message: tuple[str, Any] = ("ok", func(*args, **kwargs))
    except Exception as exc:
        message = ("error", exc)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: never re-raise those as such
        message = ("error", SimulationError(f"the Geant4 subprocess was stopped ({exc!r})"))
    try:
        sender.send(message)
    except Exception as exc:  # the result or the exception does not pickle
        sender.send(("error", SimulationError(f"cannot return the subprocess result: {exc!r}")))
    finally:
        sender.close()


def simulate_in_subprocess(
    detector: DetectorConfig,
    conditions: Conditions,
    seed: int,
    *,
    options: Geant4Options | None = None,
    root_path: str | Path | None = None,
    timeout: float | None = None,
) -> SimulationResult:
    """Simulate ``conditions`` in ``detector`` with Geant4 in a fresh process.

    Args:
        detector: the detector.
        conditions: N incident energies (MeV), PDG ids, theta and phi (rad).
        seed: non-negative integer seed (same seed, same showers).
        options: physics, entry point, production cut, scoring.
        root_path: also write a ROOT ntuple there (Geant4's analysis manager).
        timeout: seconds before the subprocess is stopped (None: no limit).

    Raises:
        SimulationError: anything :meth:`Geant4Session.simulate` raises, or the process died.
    """
    return call_in_subprocess(
        run_session,
        detector,
        conditions,
        seed,
        options=options,
        root_path=root_path,
        timeout=timeout,
    )


def run_session(
    detector: DetectorConfig,
    conditions: Conditions,
    seed: int,
    *,
    options: Geant4Options | None = None,
    root_path: str | Path | None = None,
) -> SimulationResult:
    """Simulate with this process's session (what the subprocess runs)."""
    from twinforge.simulation.geant4.session import get_session

    session = get_session(detector, options)
    showers = session.simulate(conditions, seed, root_path=root_path)
    return SimulationResult(
        showers=showers,
        totals=session.last_totals,
        provenance=session.provenance(),
        root_path=Path(root_path) if root_path is not None else None,
    )
