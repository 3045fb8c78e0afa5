"""Simulation benchmark: `modelport serve --simulate` against FakeAI, same load, one run.

    python benchmarks/simulate.py [--requests 1000] [--concurrency 1,64,256] [--speed 10]
        [--model openai:gpt-4o] [--fakeai-python PATH] [--json]

Both servers run on loopback, each in its own process, at the same time (an idle one costs
nothing), and every cell of the table is measured on FakeAI and then on modelport with the
same requests: chat completions, whole and streamed, at each concurrency, with latency
simulation off and on. The client is one process (uvloop when installed, aiohttp when
installed, else httpx), its keep-alive connection pool sized to the concurrency; every
request has its own prompt, opening with words of its own, so FakeAI's simulated KV
cache (which shortens the time to first token of a prompt whose start it has seen) stays
out of the measurement.

- Latency off: modelport with ``MODELPORT_SIM_SPEED=instant``, FakeAI with TTFT and ITL 0.
- Latency on: modelport at ``--speed`` (its model's catalog profile, or its size preset,
  divided by the speed), FakeAI configured to that same profile: the mean TTFT and ITL,
  and a uniform spread of the same standard deviation.

Measured per request: latency to the last byte; streamed, the time to the first content
event (TTFT) and the mean gap between content events (ITL). The table compares their
means with the configured profile ("cfg") and a whole answer's mean latency with what the
profile gives for its tokens (TTFT + (tokens - 1) x ITL); a concurrent cell served well
below the rate that pace allows is marked saturated (the server, not the profile, set its
timings). First (unless ``--no-calibrate``) the client alone is measured against a
trivial server that answers canned bodies, to show the load generator is not what limits
the rates; each server's CPU per request, and its and the client's CPU use, say which side
was saturated (and stay readable when other work shares the CPUs, unlike req/s).
Concurrency 1 runs a tenth of ``--requests``. The default run takes 2 to 3 minutes.

FakeAI lives in a virtual environment of its own (never modelport's)::

    python3 -m venv /tmp/fakeai-venv && /tmp/fakeai-venv/bin/pip install fakeai pillow

(``pillow``: FakeAI 0.3.2 imports it without declaring it). ``--install-fakeai`` does
this. FakeAI's ``server --ttft/--itl`` flags do not reach its app (it builds its config
again from the environment), so the benchmark sets ``FAKEAI_GENERATION__TTFT_MS`` and its
siblings instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import free_port, serve, stop  # noqa: E402

T = TypeVar("T")
DEFAULT_FAKEAI = Path(tempfile.gettempdir()) / "fakeai-venv" / "bin" / "python"
#: Two words of its own open each prompt: FakeAI's simulated KV cache (ids are md5 mod
#: 50,000, so they collide) shortens the TTFT of a prompt by the share of its prefix seen.
PROMPT = "{0}{1} ask{1}: explain how a load balancer spreads traffic across servers"
#: A streamed event that carries text (both servers write compact JSON).
CONTENT, EMPTY = b'"content":"', b'"content":""'
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- the profile each server is configured to ------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Mean TTFT and ITL in ms, and their standard deviations, as configured."""

    ttft_ms: float
    ttft_std_ms: float
    itl_ms: float
    itl_std_ms: float


def _positive_mean(mean: float, std: float) -> float:
    """The mean of a Gaussian redrawn below zero (sim.py's ``_positive_gauss``)."""
    if std <= 0:
        return max(0.0, mean)
    a = mean / std
    pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(a / math.sqrt(2)))
    return mean + std * pdf / cdf


def modelport_profile(model: str, prompts: list[str], speed: float) -> Profile:
    """What sim.py draws for these one-message text prompts to ``model`` at ``speed``: its
    profile (or size preset), TTFT grown by the prompt's tokens as the model counts them."""
    from modelport.api import get_catalog
    from modelport.catalog.estimates import latency_profile
    from modelport.providers.sim import PROMPT_TTFT_GROWTH, TTFT_SPREAD
    from modelport.providers.sim_tokens import token_rule

    registry, _, name = model.partition(":")
    entry = get_catalog()[f"{registry}/{name}" if name else model]
    profile = latency_profile(entry)
    rule = token_rule(entry)
    framing = rule.reply_tokens + rule.message_tokens
    framing += rule.count("user") if rule.counts_role else 0
    prompt_tokens = statistics.mean(framing + rule.count(text) for text in prompts)
    ttft = float(profile.time_to_first_token_ms or 0.0)
    ttft *= 1 + PROMPT_TTFT_GROWTH * prompt_tokens / 1000
    itl = float(profile.inter_token_latency_ms_mean or 0.0)
    itl_std = float(profile.inter_token_latency_ms_std or 0.0)
    return Profile(
        ttft_ms=_positive_mean(ttft, ttft * TTFT_SPREAD) / speed,
        ttft_std_ms=ttft * TTFT_SPREAD / speed,
        itl_ms=_positive_mean(itl, itl_std) / speed,
        itl_std_ms=itl_std / speed,
    )


def fakeai_environment(profile: Profile | None) -> dict[str, str]:
    """FakeAI's settings for a profile: its delays are uniform over mean ± variance%, so
    the variance that gives the same standard deviation is std·√3/mean."""
    if profile is None:
        return {"FAKEAI_GENERATION__TTFT_MS": "0", "FAKEAI_GENERATION__ITL_MS": "0"}

    def spread(mean: float, std: float) -> str:
        return f"{min(100.0, std * math.sqrt(3) / mean * 100) if mean else 0.0:.2f}"

    return {
        "FAKEAI_GENERATION__TTFT_MS": f"{profile.ttft_ms:.4f}",
        "FAKEAI_GENERATION__TTFT_VARIANCE_PERCENT": spread(profile.ttft_ms, profile.ttft_std_ms),
        "FAKEAI_GENERATION__ITL_MS": f"{profile.itl_ms:.4f}",
        "FAKEAI_GENERATION__ITL_VARIANCE_PERCENT": spread(profile.itl_ms, profile.itl_std_ms),
    }


# -- the servers ------------------------------------------------------------------------


@dataclass
class Server:
    """A server under load: its name, chat URL, model id and process id."""

    name: str
    url: str
    model: str
    pid: int


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds a process has used (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200 and answer.json().get("ready", True):
                return
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{what} did not start (exit {process.poll()}):\n{tail}")
        time.sleep(0.2)


@contextlib.contextmanager
def fakeai_server(python: Path, env: dict[str, str], model: str) -> Iterator[Server]:
    """FakeAI's own CLI (``fakeai server``, uvicorn, one process) on a free port."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="fakeai-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(python), "-m", "fakeai", "server", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/health", process, log, "FakeAI")
        yield Server("FakeAI", f"{base}/v1/chat/completions", model, process.pid)
    finally:
        stop(process)
        log.unlink(missing_ok=True)


@contextlib.contextmanager
def modelport_server(speed: str, model: str) -> Iterator[Server]:
    """``modelport serve --simulate`` with a home of its own."""
    with (
        tempfile.TemporaryDirectory(prefix="modelport-sim-") as home,
        serve(Path(home), "--simulate", env={"MODELPORT_SIM_SPEED": speed}) as server,
    ):
        yield Server("modelport", f"{server.url}/v1/chat/completions", model, server.process.pid)


# -- a trivial server: what the client alone can drive -----------------------------------


def _canned(stream: bool, tokens: int) -> bytes:
    """A response like the servers' (headers and body) for a trivial server to repeat."""
    if not stream:
        text = " ".join(["lorem"] * tokens)
        body = json.dumps(
            {
                "id": "chatcmpl-0",
                "object": "chat.completion",
                "model": "canned",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": tokens},
            },
            separators=(",", ":"),
        ).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        return f"{head}\r\n\r\n".encode() + body
    events = []
    for i in range(tokens):
        chunk = {"id": "chatcmpl-0", "choices": [{"index": 0, "delta": {"content": f" w{i}"}}]}
        events.append(f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode())
    events.append(b"data: [DONE]\n\n")
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked"
        + b"\r\n\r\n"
        + chunked
    )


class _Trivial(asyncio.Protocol):
    """HTTP/1.1 keep-alive, every POST answered with a canned body at once."""

    def __init__(self, whole: bytes, streamed: bytes) -> None:
        self.whole, self.streamed, self.buffer = whole, streamed, b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's is no asyncio.Transport, but writes like one

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 :].split(b"\r\n", 1)[0]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.streamed if b'"stream":true' in body else self.whole)


def trivial_main(port: int) -> None:
    """Serve canned answers on ``port`` until killed (run in its own process)."""
    whole, streamed = _canned(False, 48), _canned(True, 48)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Trivial(whole, streamed), "127.0.0.1", port)
        print("ready", flush=True)
        await server.serve_forever()

    _run(main())


@contextlib.contextmanager
def trivial_server() -> Iterator[Server]:
    """The trivial server in its own process (not sharing the client's interpreter)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--trivial-server", str(port)], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        yield Server("trivial", f"http://127.0.0.1:{port}/v1/chat/completions", "x", process.pid)
    finally:
        process.kill()
        process.wait()


# -- the load ---------------------------------------------------------------------------


@dataclass
class Sample:
    """One request: seconds to the last byte, to the first content event, between the
    first and last content events, and the content events (tokens) it got."""

    total: float
    first: float = 0.0
    span: float = 0.0
    tokens: int = 0


@dataclass
class Cell:
    """One server under one load."""

    server: str
    latency: str
    mode: str
    concurrency: int
    requests: int
    seconds: float
    samples: list[Sample] = field(repr=False)
    errors: int
    server_cpu: float | None
    client_cpu: float
    expected: Profile | None = None

    def rate(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(s.total for s in self.samples) or [math.nan]
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def cpu_ms(self) -> float | None:
        """Server CPU per request: steadier than req/s when other work shares the CPUs."""
        if self.server_cpu is None or not self.samples:
            return None
        return self.server_cpu / 100 * self.seconds / len(self.samples) * 1000

    def ttft(self) -> float | None:
        firsts = [s.first for s in self.samples if s.tokens]
        return statistics.mean(firsts) * 1000 if firsts and self.mode == "stream" else None

    def itl(self) -> float | None:
        """The mean gap between content events over all requests (each gap counts once)."""
        gaps = sum(s.tokens - 1 for s in self.samples if s.tokens > 1)
        spans = sum(s.span for s in self.samples if s.tokens > 1)
        return spans / gaps * 1000 if gaps and self.mode == "stream" else None

    def tokens(self) -> float:
        return statistics.mean(s.tokens for s in self.samples) if self.samples else 0.0

    def answer_ms(self) -> tuple[float, float] | None:
        """Mean latency to the last byte, and what the profile gives for the same tokens."""
        if self.expected is None or not self.samples:
            return None
        e = self.expected
        profile = statistics.mean(e.ttft_ms + max(0, s.tokens - 1) * e.itl_ms for s in self.samples)
        return statistics.mean(s.total for s in self.samples) * 1000, profile

    def saturated(self) -> bool:
        """Concurrent requests served well under the rate the profile's pace allows: the
        server was the bottleneck, so its timings say how it degrades, not how it keeps time."""
        answer = self.answer_ms()
        if answer is None or self.concurrency == 1:
            return False
        return self.rate() < 0.8 * self.concurrency / answer[1] * 1000

    def row(self) -> dict[str, Any]:
        """The cell as JSON: its numbers, not its samples."""
        answer = self.answer_ms()
        return {
            "server": self.server,
            "latency": self.latency,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "completed": len(self.samples),
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.rate(), 1),
            "p50_ms": _round(self.pct(50)),
            "p99_ms": _round(self.pct(99)),
            "tokens_per_request": round(self.tokens(), 1),
            "ttft_ms": _round(self.ttft()),
            "itl_ms": _round(self.itl(), 3),
            "answer_ms": _round(answer[0] if answer else None),
            "expected": asdict(self.expected) if self.expected else None,
            "expected_answer_ms": _round(answer[1] if answer else None),
            "saturated": self.saturated(),
            "server_cpu_percent": _round(self.server_cpu, 0),
            "server_cpu_ms_per_request": _round(self.cpu_ms(), 3),
            "client_cpu_percent": round(self.client_cpu, 0),
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class _Events:
    """Counts a stream's content events as its bytes arrive (whole lines only, counted with
    ``bytes.count``: a client that parsed each event would be slower than the servers)."""

    def __init__(self) -> None:
        self.rest, self.first, self.last, self.count = b"", 0.0, 0.0, 0

    def feed(self, chunk: bytes) -> None:
        data = self.rest + chunk
        end = data.rfind(b"\n") + 1
        self.rest = data[end:]
        found = data.count(CONTENT, 0, end) - data.count(EMPTY, 0, end)
        if found:
            self.last = time.perf_counter()
            if not self.count:
                self.first = self.last
            self.count += found

    def sample(self, started: float) -> Sample:
        first = self.first - started if self.count else 0.0
        return Sample(time.perf_counter() - started, first, self.last - self.first, self.count)


def _bodies(
    model: str, numbers: range, stream: bool, max_tokens: int, *, word: str = "Request"
) -> list[bytes]:
    """One request body per number, each with its own prompt."""
    return [
        json.dumps(
            {
                "model": model,
                "messages": [{"role": "user", "content": PROMPT.format(word, i)}],
                "max_tokens": max_tokens,
                "stream": stream,
            },
            separators=(",", ":"),
        ).encode()
        for i in numbers
    ]


One = Callable[[bytes], Awaitable[Sample]]


@contextlib.asynccontextmanager
async def _aiohttp_client(url: str, stream: bool, concurrency: int) -> Any:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:

        async def one(body: bytes) -> Sample:
            started = time.perf_counter()
            async with session.post(url, data=body) as response:
                if response.status != 200:
                    await response.read()
                    raise RuntimeError(f"HTTP {response.status}")
                if not stream:
                    data = await response.read()
                    tokens = json.loads(data)["usage"]["completion_tokens"]
                    return Sample(time.perf_counter() - started, tokens=tokens)
                events = _Events()
                async for chunk in response.content.iter_any():
                    events.feed(chunk)
            return events.sample(started)

        yield one


@contextlib.asynccontextmanager
async def _httpx_client(url: str, stream: bool, concurrency: int) -> Any:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=300) as client:

        async def one(body: bytes) -> Sample:
            started = time.perf_counter()
            if not stream:
                response = await client.post(url, content=body)
                response.raise_for_status()
                tokens = response.json()["usage"]["completion_tokens"]
                return Sample(time.perf_counter() - started, tokens=tokens)
            events = _Events()
            async with client.stream("POST", url, content=body) as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    events.feed(chunk)
            return events.sample(started)

        yield one


CLIENT = "aiohttp" if importlib.util.find_spec("aiohttp") else "httpx"


async def _drive(one: One, bodies: list[bytes], concurrency: int) -> tuple[list[Sample], int]:
    samples: list[Sample] = []
    errors = 0
    todo = iter(bodies)

    async def worker() -> None:
        nonlocal errors
        for body in todo:  # one shared iterator: each body is sent once
            try:
                samples.append(await one(body))
            except Exception as e:
                if not errors:
                    print(f"first error: {e!r}", file=sys.stderr)
                errors += 1  # counted and shown: a benchmark that hides failures lies

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, errors


async def _measure(
    server: Server, *, stream: bool, concurrency: int, bodies: list[bytes], warm: list[bytes]
) -> tuple[list[Sample], int, float, float | None, float]:
    client = _aiohttp_client if CLIENT == "aiohttp" else _httpx_client
    async with client(server.url, stream, concurrency) as one:
        await _drive(one, warm, concurrency)  # opens the pool's connections
        cpu_server, cpu_client = _cpu_seconds(server.pid), time.process_time()
        started = time.perf_counter()
        samples, errors = await _drive(one, bodies, concurrency)
        seconds = time.perf_counter() - started
        after = _cpu_seconds(server.pid)
        client_cpu = (time.process_time() - cpu_client) / seconds * 100
    server_cpu = None if after is None or cpu_server is None else (after - cpu_server)
    server_cpu = None if server_cpu is None else server_cpu / seconds * 100
    return samples, errors, seconds, server_cpu, client_cpu


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (a faster client), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run_cell(
    server: Server,
    *,
    latency: str,
    stream: bool,
    concurrency: int,
    requests: int,
    max_tokens: int,
    expected: Profile | None,
    seed: int,
) -> Cell:
    """One server under one load, after a warm-up of the same shape."""
    bodies = _bodies(server.model, range(seed, seed + requests), stream, max_tokens)
    # Prompts never seen again, so that FakeAI's simulated KV cache never matches them.
    warm = _bodies(server.model, range(max(10, concurrency)), stream, max_tokens, word="Warm")
    samples, errors, seconds, server_cpu, client_cpu = _run(
        _measure(server, stream=stream, concurrency=concurrency, bodies=bodies, warm=warm)
    )
    return Cell(
        server.name,
        latency,
        "stream" if stream else "whole",
        concurrency,
        requests,
        seconds,
        samples,
        errors,
        server_cpu,
        client_cpu,
        expected,
    )


# -- FakeAI's environment ----------------------------------------------------------------


def fakeai_python(given: str | None, install: bool) -> tuple[Path, str, str]:
    """The interpreter of FakeAI's venv, FakeAI's version and its uvicorn's loop/http."""
    python = Path(given) if given else DEFAULT_FAKEAI
    if install and not python.exists():
        venv = python.parent.parent
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", "fakeai", "pillow"]
            subprocess.run(pip, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"Could not install FakeAI into {venv} ({e}).") from e
    probe = (
        "import importlib.metadata as m, importlib.util as u, fakeai.app;"
        "print(m.version('fakeai'));"
        "print(('uvloop' if u.find_spec('uvloop') else 'asyncio') + '/' +"
        " ('httptools' if u.find_spec('httptools') else 'h11'))"
    )
    try:
        found = subprocess.run(
            [str(python), "-c", probe], capture_output=True, text=True, check=True, timeout=120
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(
            f"FakeAI is not importable with {python}: install it in a venv of its own, "
            "`python3 -m venv /tmp/fakeai-venv && /tmp/fakeai-venv/bin/pip install fakeai "
            "pillow`, then pass --fakeai-python /tmp/fakeai-venv/bin/python "
            "(or run with --install-fakeai)."
        ) from e
    version, stack = found.stdout.split()[-2:]
    return python, version, stack


def _stack() -> str:
    """The event loop and HTTP parser uvicorn (and the client) pick in this interpreter."""
    found = importlib.util.find_spec
    loop = "uvloop" if found("uvloop") else "asyncio"
    return loop + "/" + ("httptools" if found("httptools") else "h11")


# -- the table ---------------------------------------------------------------------------


def _vs(measured: float | None, expected: float | None, digits: int = 1) -> str:
    if measured is None:
        return "–"
    if expected is None:
        return f"{measured:.{digits}f}"
    off = (measured / expected - 1) * 100 if expected else math.inf
    return f"{measured:.{digits}f} / {expected:.{digits}f} ({off:+.0f}%)"


def print_table(cells: list[Cell], header: list[str]) -> None:
    """The cells as one Markdown table, then the comparisons the issue asks for."""
    print()
    for line in header:
        print(line)
    print()
    print(
        "| latency | mode | conc. | server | done | req/s | p50 ms | p99 ms | tok/req "
        "| TTFT ms / cfg | ITL ms / cfg | answer ms / profile | CPU ms/req | CPU srv/cli % "
        "| errors |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cells:
        e = c.expected
        answer = c.answer_ms()
        cpu = f"{c.server_cpu:.0f}/{c.client_cpu:.0f}" if c.server_cpu is not None else "–"
        mark = " (saturated)" if c.saturated() else ""
        print(
            f"| {c.latency} | {c.mode} | {c.concurrency} | {c.server}{mark} | {len(c.samples)} "
            f"| {c.rate():.0f} | {c.pct(50):.2f} | {c.pct(99):.2f} | {c.tokens():.1f} "
            f"| {_vs(c.ttft(), e.ttft_ms if e else None)} "
            f"| {_vs(c.itl(), e.itl_ms if e else None, 2)} "
            f"| {_vs(*answer) if answer else '–'} | {_vs(c.cpu_ms(), None, 2)} | {cpu} "
            f"| {c.errors} |"
        )
    print()
    for line in summary(cells):
        print(line)


def summary(cells: list[Cell]) -> list[str]:
    """modelport's throughput over FakeAI's, and each one's distance from its profile."""
    lines = []
    by = {(c.server, c.latency, c.mode, c.concurrency): c for c in cells}
    for c in cells:
        other = by.get(("FakeAI", c.latency, c.mode, c.concurrency))
        if c.server != "modelport" or c.latency != "off" or other is None or not other.rate():
            continue
        ours, theirs = c.cpu_ms(), other.cpu_ms()
        cpu = f"; server CPU per request {theirs / ours:.2f}x less" if ours and theirs else ""
        lines.append(
            f"- latency off, {c.mode}, concurrency {c.concurrency}: modelport {c.rate():.0f} "
            f"req/s, FakeAI {other.rate():.0f} req/s = {c.rate() / other.rate():.2f}x{cpu}"
        )
    for c in cells:
        if c.expected is None or c.server == "trivial":
            continue
        offs = []
        for what, measured, expected in (
            ("TTFT", c.ttft(), c.expected.ttft_ms),
            ("ITL", c.itl(), c.expected.itl_ms),
            ("answer", *(c.answer_ms() or (None, None))),
        ):
            if measured is not None and expected:
                offs.append(f"{what} {(measured / expected - 1) * 100:+.0f}%")
        mark = ", saturated" if c.saturated() else ""
        lines.append(
            f"- latency on, {c.mode}, concurrency {c.concurrency}{mark}, {c.server}: "
            + ", ".join(offs)
        )
    return lines


# -- main --------------------------------------------------------------------------------


def _count(requests: int, concurrency: int) -> int:
    """Requests of a cell: a tenth at concurrency 1 (one at a time, they take longest)."""
    return max(concurrency, requests // 10) if concurrency == 1 else requests


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per cell (a tenth at 1)")
    parser.add_argument("--concurrency", default="1,64,256")
    parser.add_argument("--speed", type=float, default=10.0, help="latency on: times faster")
    parser.add_argument("--model", default="openai:gpt-4o", help="modelport's id (FakeAI: name)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--modes", default="whole,stream")
    parser.add_argument("--latency", default="off,on")
    parser.add_argument("--servers", default="FakeAI,modelport")
    parser.add_argument("--fakeai-python", help=f"FakeAI's venv python (default {DEFAULT_FAKEAI})")
    parser.add_argument("--install-fakeai", action="store_true", help="create that venv")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false")
    parser.add_argument("--json", action="store_true", help="print JSON, not the table")
    parser.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trivial_server:
        trivial_main(args.trivial_server)
        return
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = [m.strip() == "stream" for m in args.modes.split(",")]
    servers = [s.strip() for s in args.servers.split(",")]
    fakeai_model = args.model.split(":", 1)[-1]
    header = [
        f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}",
        f"Client: {CLIENT} on {_stack().split('/')[0]}, one process; "
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start",
    ]
    python = None
    if "FakeAI" in servers:
        python, version, fakeai_stack = fakeai_python(args.fakeai_python, args.install_fakeai)
        header.append(
            f"FakeAI {version} (`{python} -m fakeai server`, uvicorn on {fakeai_stack}), "
            f"model {fakeai_model!r}"
        )
    header.append(
        f"modelport `serve --simulate` (uvicorn on {_stack()}), "
        f"model {args.model!r}, speed {args.speed:g}x when latency is on"
    )
    prompts = [PROMPT.format("Request", i) for i in range(args.requests)]
    profile = modelport_profile(args.model, prompts, args.speed)
    cells: list[Cell] = []
    started = time.perf_counter()
    if args.calibrate:
        with trivial_server() as trivial:
            for stream in modes:
                for concurrency in levels:
                    cells.append(
                        run_cell(
                            trivial,
                            latency="off",
                            stream=stream,
                            concurrency=concurrency,
                            requests=_count(args.requests, concurrency),
                            max_tokens=args.max_tokens,
                            expected=None,
                            seed=0,
                        )
                    )
    seed = 0
    for latency in args.latency.split(","):
        on = latency.strip() == "on"
        expected = profile if on else None
        with contextlib.ExitStack() as stack:
            running = []
            if "FakeAI" in servers:
                assert python is not None
                env = fakeai_environment(expected)
                running.append(stack.enter_context(fakeai_server(python, env, fakeai_model)))
            if "modelport" in servers:
                speed = f"{args.speed:g}x" if on else "instant"
                running.append(stack.enter_context(modelport_server(speed, args.model)))
            for stream in modes:
                for concurrency in levels:
                    n = _count(args.requests, concurrency)
                    for server in running:  # the same prompts for each server
                        cells.append(
                            run_cell(
                                server,
                                latency=latency.strip(),
                                stream=stream,
                                concurrency=concurrency,
                                requests=n,
                                max_tokens=args.max_tokens,
                                expected=expected,
                                seed=seed,
                            )
                        )
                    seed += n
    header.append(
        f"Profile with latency on: TTFT {profile.ttft_ms:.2f} ms (std {profile.ttft_std_ms:.2f}),"
        f" ITL {profile.itl_ms:.3f} ms (std {profile.itl_std_ms:.3f}); "
        f"run took {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        report = {"header": header, "cells": [c.row() for c in cells], "summary": summary(cells)}
        print(json.dumps(report, indent=2))
    else:
        print_table(cells, header)


if __name__ == "__main__":
    main()
