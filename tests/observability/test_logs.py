"""Log options and trace ids in JSON log lines."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hector.cli import main
from hector.logsetup import JSONFormatter


def record(message: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("hector.agent", logging.INFO, __file__, 1, message, None, None)


def test_json_line_names_the_current_span() -> None:
    formatter = JSONFormatter()
    assert "trace_id" not in json.loads(formatter.format(record()))
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        line = json.loads(formatter.format(record()))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["message"] == "hello" and line["component"] == "agent"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_invalid_log_level_exits_1(
    how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "--provider", "test", "--port", "1"]
    if how == "flag":
        args += ["--log-level", "loud"]
    else:
        monkeypatch.setenv("LOG_LEVEL", "loud")
    assert main(args) == 1
    assert "invalid log level 'loud'" in capsys.readouterr().err
