"""Prometheus metrics, on a registry per server (tests run many servers in one process).

Two sources feed it:
- the HTTP edge (server/security.py's middleware) counts every HTTP request, rejected ones
  included: `switchyard_http_requests_total{path,status}` and its latency histogram;
- the pipeline observes each traffic-log record as it is written, whichever door it came
  through: requests by endpoint and outcome, latency overall and per stage, tokens by kind,
  routing decisions, compaction ratio, upstream errors and fallbacks.
Labels only ever hold bounded values (paths, endpoints, groups, error class names), never
keys, request ids or message text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from switchyard.core.trafficlog.schema import TrafficRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                  10, 30)
_RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0, 1.25, 1.5, 2.0)
KNOWN_PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/models", "/healthz", "/metrics",
               "/openapi.json")


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = r = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter("switchyard_http_requests", "HTTP requests by path and "
                                     "status code", ["path", "status"], registry=r)
        self.http_duration = Histogram("switchyard_http_request_duration_seconds",
                                       "HTTP request latency, to the last byte", ["path"],
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.requests = Counter("switchyard_requests", "Chat requests by endpoint and outcome",
                                ["endpoint", "status"], registry=r)
        self.duration = Histogram("switchyard_request_duration_seconds",
                                  "Chat request latency", ["endpoint"],
                                  buckets=_LATENCY_BUCKETS, registry=r)
        self.stage_duration = Histogram("switchyard_stage_duration_seconds",
                                        "Pipeline stage latency", ["stage"],
                                        buckets=_STAGE_BUCKETS, registry=r)
        self.tokens = Counter("switchyard_tokens", "Tokens by kind", ["kind"], registry=r)
        self.decisions = Counter("switchyard_routing_decisions", "Routing decisions by group",
                                 ["group", "overridden"], registry=r)
        self.compaction_ratio = Histogram("switchyard_compaction_ratio",
                                          "History tokens after / before compaction and recall",
                                          buckets=_RATIO_BUCKETS, registry=r)
        self.upstream_errors = Counter("switchyard_upstream_errors", "Failed upstream attempts "
                                       "by kind", ["kind"], registry=r)
        self.fallbacks = Counter("switchyard_fallbacks", "Requests answered by another "
                                 "deployment than the first tried", registry=r)
        self.auth_failures = Counter("switchyard_auth_failures", "Requests refused for a "
                                     "missing, wrong or revoked key", ["door"], registry=r)
        self.limited = Counter("switchyard_limit_rejections", "Requests refused by a limit",
                               ["limit"], registry=r)

    # -- feeds -----------------------------------------------------------------------------
    def observe_http(self, path: str, status: int, seconds: float) -> None:
        path = path if path in KNOWN_PATHS else "other"  # bounded label values
        self.http_requests.labels(path, str(status)).inc()
        self.http_duration.labels(path).observe(seconds)

    def observe_record(self, record: TrafficRecord) -> None:
        """One traffic-log record, as the pipeline writes it."""
        self.requests.labels(record.endpoint, record.status).inc()
        self.duration.labels(record.endpoint).observe(record.latency_ms / 1000)
        for stage, ms in record.stage_ms.items():
            self.stage_duration.labels(stage).observe(ms / 1000)
        for kind in ("prompt", "completion", "reasoning", "cached"):
            count = getattr(record, f"{kind}_tokens")
            if count:
                self.tokens.labels(kind).inc(count)
        if record.model:
            self.decisions.labels(record.model, str(record.overridden).lower()).inc()
        if record.tokens_before > 0:
            self.compaction_ratio.observe(record.tokens_after / record.tokens_before)
        for attempt in record.attempt_log:
            if attempt.outcome != "ok":
                self.upstream_errors.labels(attempt.outcome).inc()
        if record.fallback:
            self.fallbacks.inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
