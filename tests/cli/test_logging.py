"""The CLI's logging setup: one handler on the ``twinforge`` logger, each record printed once."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console

from twinforge.cli import _common


@pytest.fixture
def cli_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The CLI's stderr console writing into a buffer; the loggers restored afterwards."""
    stream = io.StringIO()
    monkeypatch.setattr(_common, "err_console", Console(file=stream, width=200))
    logger = logging.getLogger("twinforge")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield stream
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_a_logged_message_is_printed_once(cli_logging: io.StringIO) -> None:
    seen_by_root: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen_by_root.append(record)

    root = logging.getLogger()
    collect = Collect()
    root.addHandler(collect)  # what logging.basicConfig() in a library would install
    try:
        _common.setup_logging(quiet=False, debug=False)
        _common.setup_logging(quiet=False, debug=False)  # a second run in the same process
        logging.getLogger("twinforge.demo").info("demo message %d", 42)
    finally:
        root.removeHandler(collect)
    assert cli_logging.getvalue().count("demo message 42") == 1
    assert [r.getMessage() for r in seen_by_root] == []
    assert len(logging.getLogger("twinforge").handlers) == 1


def test_quiet_hides_info_and_debug_shows_it(cli_logging: io.StringIO) -> None:
    log = logging.getLogger("twinforge.demo")
    _common.setup_logging(quiet=True, debug=False)
    log.info("hidden")
    log.warning("shown")
    _common.setup_logging(quiet=False, debug=True)
    log.debug("details")
    text = cli_logging.getvalue()
    assert "hidden" not in text
    assert text.count("shown") == 1
    assert text.count("details") == 1
