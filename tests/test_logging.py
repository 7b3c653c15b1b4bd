"""The package logger's stderr handler follows ``sys.stderr`` (swapped and closed streams)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

from beira_rt._logging import logger, set_log_level


def test_records_go_to_the_current_stderr_after_the_old_one_was_closed(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    monkeypatch.setattr(logger, "handlers", [])  # a fresh handler, made while `first` is stderr
    monkeypatch.setattr(logger, "propagate", False)
    level = logger.level
    try:
        set_log_level(level="INFO")
        logger.info("to the first")
        assert "to the first" in first.getvalue()
        first.close()  # as pytest closes a test's capture, or a GUI its redirection
        monkeypatch.setattr(sys, "stderr", second)
        errors: list[BaseException] = []
        monkeypatch.setattr(logging, "raiseExceptions", True)
        monkeypatch.setattr(
            logging.Handler, "handleError", lambda self, record: errors.append(sys.exc_info()[1])
        )
        logger.info("to the second")
        assert errors == []
        assert "INFO" in second.getvalue() and "beira_rt: to the second" in second.getvalue()
        set_log_level(level="INFO")  # called again (each CLI does): still one handler
        assert len([h for h in logger.handlers if getattr(h, "_beira", False)]) == 1
    finally:
        logger.setLevel(level)


def test_a_cli_process_logs_to_its_stderr():
    code = (
        "from beira_rt._logging import logger, set_log_level; set_log_level(); logger.warning('hello %s', 42)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.rstrip().endswith("WARNING beira_rt: hello 42")
