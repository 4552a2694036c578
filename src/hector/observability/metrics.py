"""Prometheus metrics of one app (``server.observability.metrics``).

Every app gets its own ``CollectorRegistry`` rather than the process-wide default, so several
apps in one process (tests, embedding) neither share counts nor collide on registration.

Label values are bounded on purpose: routes are route templates, agents and tools are names
from the configuration (a tool name the model made up is ``unknown``), error types are
exception class names. Nothing a client or a model can choose freely becomes a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

# Calls to models and agents take seconds to minutes; the default buckets stop at 10 s.
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_AGENT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_TOOL_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Retrieval runs from a millisecond (the embedded store) to seconds (a remote embedder).
_RETRIEVAL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The classic text format, which every Prometheus version reads; `generate_latest` writes it
# as long as names need no escaping (ours never do).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The metric families Hector emits, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # HTTP
        self.http_requests = Counter(
            "hector_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "hector_http_request_duration_seconds",
            "HTTP request latency until the response is complete (streams: until they end).",
            ["method", "route"],
            registry=r,
        )
        self.active_streams = Gauge(
            "hector_http_active_streams", "Server-sent event responses in flight.", registry=r
        )
        self.grpc_requests = Counter(
            "hector_grpc_requests_total",
            "A2A gRPC calls by method, agent (unknown for names not served) and status code.",
            ["method", "agent", "code"],
            registry=r,
        )
        self.auth_failures = Counter(
            "hector_auth_failures_total",
            "Requests whose credentials were missing or rejected.",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "hector_rate_limit_rejections_total",
            "Requests answered 429 by a rate limiter (requests, or failed credentials).",
            ["limiter"],
            registry=r,
        )
        # Agents
        self.agent_calls = Counter(
            "hector_agent_calls_total",
            "Agent runs started (new tasks and resumed ones).",
            ["agent"],
            registry=r,
        )
        self.agent_duration = Histogram(
            "hector_agent_call_duration_seconds",
            "Agent run duration, model and tool time included.",
            ["agent"],
            buckets=_AGENT_BUCKETS,
            registry=r,
        )
        self.agent_errors = Counter(
            "hector_agent_errors_total", "Agent runs that failed.", ["agent", "error_type"], registry=r
        )
        self.agent_tokens = Counter(
            "hector_agent_tokens_used_total",
            "Model tokens used by agent runs.",
            ["agent", "type"],
            registry=r,
        )
        # LLM requests
        self.llm_requests = Counter(
            "hector_llm_requests_total",
            "Model requests by provider, model and outcome (ok or error).",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.llm_duration = Histogram(
            "hector_llm_request_duration_seconds",
            "Model request latency (streams: until the last chunk).",
            ["provider", "model"],
            buckets=_LLM_BUCKETS,
            registry=r,
        )
        self.llm_tokens_input = Counter(
            "hector_llm_tokens_input_total", "Prompt tokens sent.", ["provider", "model"], registry=r
        )
        self.llm_tokens_output = Counter(
            "hector_llm_tokens_output_total", "Completion tokens received.", ["provider", "model"], registry=r
        )
        self.llm_errors = Counter(
            "hector_llm_errors_total",
            "Model requests that failed (after the provider's retries).",
            ["provider", "model", "error_type"],
            registry=r,
        )
        # Tools
        self.tool_calls = Counter(
            "hector_tool_calls_total",
            "Tool calls by tool and outcome: ok, error or denied.",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_duration = Histogram(
            "hector_tool_execution_duration_seconds",
            "Tool execution time (denied calls do not run and are not timed).",
            ["tool"],
            buckets=_TOOL_BUCKETS,
            registry=r,
        )
        self.tool_errors = Counter(
            "hector_tool_errors_total", "Tool calls that failed.", ["tool"], registry=r
        )

        self._retrieval(r)

    def _retrieval(self, r: CollectorRegistry) -> None:
        """Memory, document search, embedders, vector stores, indexing and task takeovers."""
        self.memory_summaries = Counter(
            "hector_memory_summaries_total",
            "Summaries written by summary_buffer memory, by agent and outcome (their model "
            "requests are counted in hector_llm_* too).",
            ["agent", "outcome"],
            registry=r,
        )
        self.memory_lookups = Counter(
            "hector_memory_lookups_total",
            "Long-term memory recalls by agent and outcome.",
            ["agent", "outcome"],
            registry=r,
        )
        self.memory_lookup_duration = Histogram(
            "hector_memory_lookup_duration_seconds",
            "Long-term memory recall latency (embedding the query and searching).",
            ["agent"],
            buckets=_RETRIEVAL_BUCKETS,
            registry=r,
        )
        self.rag_searches = Counter(
            "hector_rag_searches_total",
            "Document store searches by store, search mode and outcome.",
            ["store", "mode", "outcome"],
            registry=r,
        )
        self.rag_search_duration = Histogram(
            "hector_rag_search_duration_seconds",
            "Document store search latency, LLM-written queries (hyde, multi_query) included.",
            ["store", "mode"],
            buckets=_RETRIEVAL_BUCKETS,
            registry=r,
        )
        self.embedding_requests = Counter(
            "hector_embedding_requests_total",
            "Embedding calls (one or more batches) by embedder type, model and outcome.",
            ["embedder_type", "model", "outcome"],
            registry=r,
        )
        self.embedding_texts = Counter(
            "hector_embedding_texts_total",
            "Texts embedded, by embedder type and model.",
            ["embedder_type", "model"],
            registry=r,
        )
        self.embedding_duration = Histogram(
            "hector_embedding_duration_seconds",
            "Embedding call latency, all batches of the call included.",
            ["embedder_type", "model"],
            buckets=_RETRIEVAL_BUCKETS,
            registry=r,
        )
        self.vector_operations = Counter(
            "hector_vector_store_operations_total",
            "Vector store operations (query, upsert) by back end and outcome.",
            ["backend", "operation", "outcome"],
            registry=r,
        )
        self.vector_duration = Histogram(
            "hector_vector_store_operation_duration_seconds",
            "Vector store operation latency by back end.",
            ["backend", "operation"],
            buckets=_RETRIEVAL_BUCKETS,
            registry=r,
        )
        self.documents_indexed = Counter(
            "hector_rag_documents_indexed_total",
            "Documents indexed by store and change: added, updated, removed or failed.",
            ["store", "change"],
            registry=r,
        )
        self.chunks_indexed = Counter(
            "hector_rag_chunks_indexed_total",
            "Chunks embedded and written by indexing runs, by store.",
            ["store"],
            registry=r,
        )
        self.index_runs = Counter(
            "hector_rag_index_runs_total",
            "Indexing runs (start-up, changes seen by the watcher) by store and outcome.",
            ["store", "outcome"],
            registry=r,
        )
        self.task_takeovers = Counter(
            "hector_task_takeovers_total",
            "Tasks of a stopped server continued here from their checkpoint, by agent and outcome.",
            ["agent", "outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)
