"""Prometheus metrics of ``modelport serve`` and its one access-log line per request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.providers.base import request_arrived

__all__ = ["Metrics"]

access_log = logging.getLogger("modelport.access")

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's metrics in a registry of its own (so that two apps never collide)."""

    def __init__(self, *, cassette: Any = None) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            ProcessCollector,
        )

        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "modelport_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelport_request_seconds",
            "Time to answer a request (to its last byte for a stream), by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "modelport_queue_depth",
            "Inputs waiting for a model.",
            ["model"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "modelport_batch_size",
            "Inputs per dynamic batch run on an encoder.",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "modelport_tokens",
            "Tokens processed, by model and kind (prompt, completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.first_token = Histogram(
            "modelport_time_to_first_token_seconds",
            "Time from a generation request to its first token.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.loaded_models = Gauge(
            "modelport_loaded_models", "Models loaded now.", registry=self.registry
        )
        self.registry.register(_SimulationCollector(cassette))
        self.loaded_bytes = Gauge(
            "modelport_loaded_model_bytes",
            "Estimated memory of the loaded models (their weight files).",
            registry=self.registry,
        )

    def queue(self, model: str, waiting: int) -> None:
        """Record how many inputs wait for a model."""
        self.queue_depth.labels(model).set(waiting)

    def batch(self, model: str, size: int) -> None:
        """Record one dynamic batch."""
        self.batch_size.labels(model).observe(size)

    def count_tokens(self, model: str, prompt: int = 0, completion: int = 0) -> None:
        """Record tokens read and generated."""
        if prompt:
            self.tokens.labels(model, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(model, "completion").inc(completion)

    def loaded(self, count: int, size: int) -> None:
        """Record the loaded models."""
        self.loaded_models.set(count)
        self.loaded_bytes.set(size)

    def exposition(self) -> tuple[bytes, str]:
        """The text format Prometheus scrapes, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def asgi(self, app: ASGIApp, *, version: str) -> ASGIApp:
        """ASGI middleware: count and time each request, write its access-log line when its
        last byte is sent, and mark the response as modelport's (``X-Modelport-Version``)."""
        stamp = (b"x-modelport-version", version.encode())

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            # A simulated answer's latency counts from here (the loop's own clock).
            request_arrived.set(asyncio.get_running_loop().time())
            status = 500

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), stamp]
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                seconds = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope.get("method", "")
                self.requests.labels(route, method, str(status)).inc()
                self.latency.labels(route).observe(seconds)
                model = scope.get("state", {}).get("model")
                client = scope.get("client")
                access_log.info(
                    '%s "%s %s" %d %.1fms%s',
                    client[0] if client else "-",
                    method,
                    scope.get("path", ""),
                    status,
                    seconds * 1000,
                    f" model={model}" if model else "",
                )

        return middleware


class _SimulationCollector:
    """What the simulator and the cassette answered, read from their own counters when
    Prometheus scrapes (so that the simulator's hot path counts once, in one place)."""

    def __init__(self, cassette: Any) -> None:
        self.cassette = cassette

    def collect(self) -> Iterator[Any]:
        """The simulation metric families."""
        from prometheus_client.core import CounterMetricFamily

        from modelport.api.prompting import sim_stats

        report = sim_stats()
        requests = CounterMetricFamily(
            "modelport_sim_requests",
            "Calls answered by simulated models (faults and rate limits included), by model.",
            labels=["model"],
        )
        faults = CounterMetricFamily(
            "modelport_sim_faults",
            "Faults the simulator injected, by model and kind (429, 500, 503, timeout, cut).",
            labels=["model", "kind"],
        )
        limited = CounterMetricFamily(
            "modelport_sim_rate_limited",
            "Simulated calls refused by the simulated requests/tokens-per-minute limit.",
            labels=["model"],
        )
        tokens = CounterMetricFamily(
            "modelport_sim_tokens",
            "Tokens simulated models read and wrote, by model and kind (prompt, completion).",
            labels=["model", "kind"],
        )
        for model, stats in report.models.items():
            requests.add_metric([model], stats.requests)
            limited.add_metric([model], stats.rate_limited)
            tokens.add_metric([model, "prompt"], stats.input_tokens)
            tokens.add_metric([model, "completion"], stats.output_tokens)
            for kind, count in stats.faults.items():
                faults.add_metric([model, kind], count)
        yield from (requests, faults, limited, tokens)
        if self.cassette is not None:
            calls = CounterMetricFamily(
                "modelport_cassette_calls",
                "Model calls met by the cassette: replayed, missed (answered live) or recorded.",
                labels=["outcome"],
            )
            calls.add_metric(["replayed"], self.cassette.replayed)
            calls.add_metric(["missed"], self.cassette.missed)
            calls.add_metric(["recorded"], self.cassette.recorded)
            yield calls

    def describe(self) -> list[Any]:
        """Nothing up front: the families are known only when collected."""
        return []
