"""Geant4's text output goes to logging."""

from __future__ import annotations

import logging
import sys

import pytest

from twinforge.simulation.geant4.output import G4_LOGGER, geant4_output_to_logging

WARNING_BLOCK = """
-------- WWWW ------- G4Exception-START -------- WWWW -------
*** G4Exception : code001
      issued by : origin
a warning message
*** This is just a warning message. ***
-------- WWWW -------- G4Exception-END --------- WWWW -------
"""


def test_output_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=G4_LOGGER)
    with geant4_output_to_logging():
        sys.stdout.write("Geant4 version ")
        sys.stdout.write("11.4\nsecond line\n")
        sys.stdout.write(WARNING_BLOCK)
        sys.stderr.write("unterminated")
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == G4_LOGGER]
    assert (logging.DEBUG, "Geant4 version 11.4") in records
    assert (logging.DEBUG, "second line") in records
    warnings = [m for level, m in records if level == logging.WARNING]
    assert any("code001" in m and "a warning message" in m for m in warnings)
    assert (logging.WARNING, "unterminated") in records
