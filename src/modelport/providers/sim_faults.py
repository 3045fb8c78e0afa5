"""What goes wrong with a simulated model, as it goes wrong with a real one: faults and limits.

A fault is drawn per call from ``MODELPORT_SIM_FAULTS`` (``429=0.05,500=0.01,timeout=0.01,
cut=0.02``: a rate per kind) or named by the request (``metadata.sim_fault``, for tests).
It is raised as ``SimFault``, which ``SimProvider.upstream`` reads like an SDK's exception,
so it takes the path a real provider's failure takes: the same retries (``Retry-After``
honoured), the same domain errors, the same HTTP statuses and SDK exceptions for clients.
``MODELPORT_SIM_RPM`` and ``MODELPORT_SIM_TPM`` limit requests and tokens per minute per
model, answered with 429 and the seconds until the window has room, as OpenAI's limits are.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from modelport.providers.base import Upstream

__all__ = [
    "FAULT_KINDS",
    "ModelSimStats",
    "SimFault",
    "SimLimiter",
    "SimStats",
    "SimStatsReport",
    "fault_upstream",
]

#: The kinds of fault a simulated call can show.
FAULT_KINDS = ("429", "500", "503", "timeout", "cut")

#: The seconds a simulated 429 asks the caller to wait.
RETRY_AFTER = 1.0


class SimFault(Exception):
    """A simulated call's failure, carrying what a real upstream would have answered."""

    def __init__(self, upstream: Upstream) -> None:
        super().__init__(upstream.message)
        self.upstream = upstream


def fault_upstream(kind: str, model: str) -> Upstream:
    """What the provider answers for a fault of that kind (``timeout``: its caller's wait)."""
    if kind == "429":
        return Upstream(
            429,
            f"Rate limit reached for {model} (simulated).",
            retry_after=RETRY_AFTER,
            code="rate_limit_exceeded",
        )
    if kind == "500":
        return Upstream(500, "The server had an error while processing your request (simulated).")
    if kind == "503":
        return Upstream(503, f"{model} is overloaded (simulated).")
    if kind == "timeout":
        return Upstream(None, "timed out (simulated)", timeout=True)
    return Upstream(None, "the connection was cut mid-answer (simulated)")


@dataclass
class SimLimiter:
    """Requests and tokens per minute per model, over a sliding minute."""

    window: float = 60.0
    _calls: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, model: str, tokens: int, *, rpm: int | None, tpm: int | None) -> float | None:
        """Count a call, or the seconds until the window has room for it (not counted)."""
        if not rpm and not tpm:
            return None
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(model, deque())
            while calls and now - calls[0][0] >= self.window:
                calls.popleft()
            used = sum(n for _, n in calls)
            over_requests = bool(rpm) and len(calls) >= rpm  # type: ignore[operator]
            over_tokens = bool(tpm) and calls and used + tokens > tpm  # type: ignore[operator]
            if over_requests or over_tokens:
                return max(0.001, self.window - (now - calls[0][0]))
            calls.append((now, tokens))
            return None


@dataclass
class SimStats:
    """What the simulator answered since the process started."""

    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    input_tokens: Counter[str] = field(default_factory=Counter)
    output_tokens: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, model: str, input_tokens: int, output_tokens: int) -> None:
        """Count an answer and its tokens."""
        with self._lock:
            self.requests[model] += 1
            self.input_tokens[model] += input_tokens
            self.output_tokens[model] += output_tokens

    def failed(self, model: str, kind: str) -> None:
        """Count a simulated fault (``limited``: a rate limit)."""
        with self._lock:
            self.requests[model] += 1
            if kind == "limited":
                self.limited[model] += 1
            else:
                self.faults[f"{model}|{kind}"] += 1

    def snapshot(self) -> SimStatsReport:
        """Per model: requests, faults by kind, rate-limited calls and tokens."""
        with self._lock:
            models: dict[str, ModelSimStats] = {}
            for model in sorted(self.requests):
                kinds = {
                    key.split("|", 1)[1]: count
                    for key, count in self.faults.items()
                    if key.split("|", 1)[0] == model
                }
                models[model] = ModelSimStats(
                    requests=self.requests[model],
                    faults=kinds,
                    rate_limited=self.limited[model],
                    input_tokens=self.input_tokens[model],
                    output_tokens=self.output_tokens[model],
                )
            return SimStatsReport(
                requests=sum(self.requests.values()),
                faults=sum(self.faults.values()),
                rate_limited=sum(self.limited.values()),
                models=models,
            )


@dataclass(frozen=True)
class ModelSimStats:
    """What one simulated model answered."""

    requests: int
    #: Faults by kind (429, 500, 503, timeout, cut).
    faults: dict[str, int]
    rate_limited: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class SimStatsReport:
    """What the simulator answered since the process started, in all and per model."""

    requests: int = 0
    faults: int = 0
    rate_limited: int = 0
    models: dict[str, ModelSimStats] = field(default_factory=dict)
