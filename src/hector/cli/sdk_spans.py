"""Leave a2a-sdk's own OpenTelemetry spans off in the ``hector`` command unless asked for.

a2a-sdk wraps its request path (dispatcher, request handler, task manager, event queues) in
spans made through OpenTelemetry's *global* tracer provider. The ``hector`` command never
installs one: Hector's tracing has a provider of its own (``hector.observability.tracing``), so
these spans go nowhere, yet creating them cost about a fifth of a request's CPU (bench/README.md).
The SDK reads this variable once, when it is first imported, so ``hector.cli`` imports this
module before anything else. Setting ``OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=true`` (e.g. when
running under ``opentelemetry-instrument``, which installs a global provider) keeps them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
