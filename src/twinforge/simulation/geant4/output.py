"""Route Geant4's text output (G4cout, G4cerr) to :mod:`logging`.

geant4-pybind writes G4cout and G4cerr through Python's ``sys.stdout`` / ``sys.stderr``, so
swapping those for a line-buffered writer while Geant4 runs turns its chatter into log records
of the ``twinforge.simulation.geant4.g4`` logger: ordinary lines at DEBUG, G4Exception warning
blocks at WARNING, error blocks at ERROR. The swap is process-wide for its duration (Geant4 runs
in one thread per process anyway).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator

__all__ = ["G4_LOGGER", "geant4_output_to_logging"]

G4_LOGGER = "twinforge.simulation.geant4.g4"


class _LogWriter(io.TextIOBase):
    """A text stream that logs whole lines; G4Exception blocks are logged as one record."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        super().__init__()
        self._log = logger
        self._level = level
        self._partial = ""
        self._block: list[str] | None = None
        self._block_level = logging.WARNING
        self._busy = False  # logging's last-resort handler writes to sys.stderr: us

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._busy:
            return sys.__stderr__.write(text) if sys.__stderr__ else len(text)
        self._busy = True
        try:
            data = self._partial + text
            *lines, self._partial = data.split("\n")
            for line in lines:
                self._line(line)
        finally:
            self._busy = False
        return len(text)

    def flush(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            if self._partial:
                self._line(self._partial)
                self._partial = ""
            if self._block:
                self._emit_block()
        finally:
            self._busy = False

    def _line(self, line: str) -> None:
        if "G4Exception-START" in line:
            self._block = []
            self._block_level = logging.ERROR if "EEEE" in line else logging.WARNING
            return
        if self._block is not None:
            if "G4Exception-END" in line:
                self._emit_block()
            else:
                self._block.append(line.strip())
            return
        if line.strip():
            self._log.log(self._level, "%s", line.rstrip())

    def _emit_block(self) -> None:
        text = " | ".join(part for part in (self._block or []) if part)
        self._log.log(self._block_level, "Geant4: %s", text)
        self._block = None


@contextlib.contextmanager
def geant4_output_to_logging() -> Iterator[None]:
    """Within the block, Geant4's output (and anything else printed) goes to logging."""
    logger = logging.getLogger(G4_LOGGER)
    out, err = _LogWriter(logger, logging.DEBUG), _LogWriter(logger, logging.WARNING)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            yield
        finally:
            out.flush()
            err.flush()
