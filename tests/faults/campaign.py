"""The moves of the fault campaign, shared by tests/faults and benchmarks/faults.py.

Each move runs the real ``python -m modelport pull`` against the loopback Hub
(tests/hf_server.py), damages it (SIGKILL at a random moment, several processes at once),
then checks what a user could see and what a resume fetches. A move returns its facts and
the broken promises it found (``problems``); a test asserts there are none, the benchmark
counts them. Every round commits fresh random weights, so one store collects many rounds
and a kill must never harm the models pulled before it.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import modelport.api as api
from tests.hf_server import HubServer, is_lfs

__all__ = [
    "REPO",
    "ApiFuzz",
    "ConcurrentRound",
    "KillRound",
    "campaign_files",
    "concurrent_round",
    "fuzz_openapi",
    "kill_round",
    "pull_process",
]

REPO = "acme/faults"
MB = 1 << 20


def campaign_files(rng: random.Random) -> dict[str, bytes]:
    """A sentence-transformers-like repo: two LFS weights (root and a module folder) and
    small git files, every one new in each round (a random tag), so each round downloads
    every file afresh into the same store."""
    tag = rng.getrandbits(64)
    return {
        "config.json": b'{"model_type": "bert", "hidden_size": 32, "tag": %d}' % tag,
        "tokenizer.json": b'{"version": "1.0", "tag": %d}' % tag,
        "modules.json": b'[{"idx": 0, "path": "", "type": "Transformer", "tag": %d}]' % tag,
        "model.safetensors": rng.randbytes(4 * MB),
        "2_Dense/config.json": b'{"in_features": 32, "tag": %d}' % tag,
        "2_Dense/model.safetensors": rng.randbytes(1 * MB),
    }


def pull_process(ref: str, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    """``python -m modelport pull REF --quiet`` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "modelport", "pull", ref, "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _progress(home: Path, digests: list[str]) -> int:
    """Bytes of these sha256 blobs on disk so far: partial files and finished blobs."""
    total = 0
    for digest in digests:
        for path in (
            home / "store" / "partial" / f"sha256-{digest}",
            home / "store" / "blobs" / "sha256" / digest,
        ):
            try:
                total += path.stat().st_size
                break
            except FileNotFoundError:  # not begun, or renamed into blobs/ meanwhile
                continue
    return total


def _lfs_requests(hub: HubServer, sha: str) -> list[str | None]:
    """The Range header of every GET of the LFS file with this sha256 (None: no Range)."""
    return [rng for method, path, rng in hub.requests if method == "GET" and path.endswith(sha)]


def _check_visible(home: Path, files: dict[str, bytes], commit: str) -> list[str]:
    """What a user can see must be whole: every listed model verifies, a model folder that
    exists holds exactly its files, and the store has no corrupt blob or alias."""
    problems: list[str] = []
    api.reset()
    for model in api.list_models():
        if model.revision == commit and model.file_count != len(files):
            problems.append(f"listed with {model.file_count} of {len(files)} files")
    folder = home / "store" / "models" / "hf" / REPO / commit
    if folder.exists():
        found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        if found != set(files):
            problems.append(f"model folder visible with {sorted(found)}")
        for path in found & set(files):
            if (folder / path).read_bytes() != files[path]:
                problems.append(f"model folder shows a wrong or partial {path}")
    report = api.verify_store()
    if not report.ok:
        problems.append(f"store damaged: {report}")
    return problems


@dataclass
class KillRound:
    """One SIGKILL of a throttled pull and the resume after it."""

    commit: str
    mode: str  # "time": at a random moment after start; "bytes": at a random share of the bytes
    delay_s: float = 0.0
    exited_first: bool = False  # the pull ended before the signal landed
    kept: dict[str, int] = field(default_factory=dict)  # LFS path → partial bytes left
    refetched: int = 0  # bytes of the LFS files fetched again from their start
    resume_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        """Whether the kill and the resume kept every promise."""
        return not self.problems


def kill_round(
    hub: HubServer,
    home: Path,
    rng: random.Random,
    *,
    mode: str,
    env: dict[str, str],
    bytes_per_second: float = 4_000_000,
) -> KillRound:
    """Commit fresh weights, start ``modelport pull``, SIGKILL it, check, resume, check."""
    files = campaign_files(rng)
    repo = hub.repos.get(REPO) or hub.add_repo(REPO, {})
    commit = repo.commit(files)
    lfs = {path: data for path, data in files.items() if is_lfs(path, data)}
    total = sum(len(data) for data in lfs.values())
    result = KillRound(commit=commit, mode=mode)

    hub.knobs.bytes_per_second = bytes_per_second
    start = time.monotonic()
    proc = pull_process(f"hf:{REPO}", env)
    if mode == "time":
        # From interpreter start-up to the last byte: imports, metadata, any file, commit.
        time.sleep(rng.uniform(0.0, 0.5 + total / bytes_per_second * 1.2))
    else:
        target = int(total * rng.uniform(0.02, 0.98))
        digests = [hashlib.sha256(data).hexdigest() for data in lfs.values()]
        while _progress(home, digests) < target and proc.poll() is None:
            if time.monotonic() - start > 60:
                result.problems.append("the pull made no progress for 60 s")
                break
            time.sleep(0.005)
    result.delay_s = time.monotonic() - start
    result.exited_first = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    if result.exited_first and proc.returncode != 0:
        result.problems.append(f"the pull failed before the kill: {err.strip()}")
    hub.knobs.bytes_per_second = None

    partial = home / "store" / "partial"
    for path, data in lfs.items():
        part = partial / f"sha256-{hashlib.sha256(data).hexdigest()}"
        result.kept[path] = part.stat().st_size if part.exists() else 0
    blobs = home / "store" / "blobs" / "sha256"
    stored = {
        path for path, data in lfs.items() if (blobs / hashlib.sha256(data).hexdigest()).exists()
    }
    result.problems += [f"after the kill: {p}" for p in _check_visible(home, files, commit)]

    time.sleep(0.05)  # let the server thread that served the killed process notice
    hub.reset_counts()
    began = time.monotonic()
    try:
        model = api.pull(f"hf:{REPO}")
    except Exception as e:  # a broken promise to report, whatever it is
        result.problems.append(f"the resume failed: {type(e).__name__}: {e}")
        return result
    result.resume_s = time.monotonic() - began
    if model.revision != commit:
        result.problems.append(f"resumed {model.revision}, not {commit}")
    folder = Path(model.path)
    for path, data in files.items():
        target = folder / path
        if not target.is_file() or hashlib.sha256(target.read_bytes()).digest() != (
            hashlib.sha256(data).digest()
        ):
            result.problems.append(f"after the resume {path} has the wrong sha256")
    recorded = {path: sha for path, sha, _ in model.files}
    for path, data in files.items():
        if recorded.get(path) != hashlib.sha256(data).hexdigest():
            result.problems.append(f"the manifest records a wrong sha256 for {path}")
    # Where the kill left a partial file, the resume continues it: never from byte 0.
    for path, data in lfs.items():
        ranges = _lfs_requests(hub, hashlib.sha256(data).hexdigest())
        kept = result.kept[path]
        if path in stored or kept == len(data):
            expected: list[str | None] = []
        elif kept:
            expected = [f"bytes={kept}-"]
        else:
            expected = [None]
        if ranges != expected:
            result.problems.append(
                f"{path}: kept {kept} of {len(data)} bytes, resume asked {ranges}, not {expected}"
            )
        result.refetched += hub.bytes_sent[path] if ranges == [None] else 0
    leftovers = [p.name for p in partial.iterdir()] if partial.exists() else []
    if leftovers:
        result.problems.append(f"partial files left after the resume: {leftovers}")
    result.problems += [f"after the resume: {p}" for p in _check_visible(home, files, commit)]
    return result


@dataclass
class ConcurrentRound:
    """Several processes pulling one new revision at once, maybe with the first one killed."""

    commit: str
    processes: int
    killed: bool
    gets: dict[str, int] = field(default_factory=dict)  # file → GETs
    fresh_gets: dict[str, int] = field(default_factory=dict)  # file → GETs from byte 0
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)


def concurrent_round(
    hub: HubServer,
    home: Path,
    rng: random.Random,
    *,
    processes: int,
    kill_first: bool,
    env: dict[str, str],
    bytes_per_second: float = 8_000_000,
) -> ConcurrentRound:
    """Pull one fresh revision from ``processes`` processes at once and check that every
    file crossed the wire once and every process succeeded.

    With ``kill_first``, the first process downloads the weights alone until the Hub stalls
    its body (so it holds the weights' lock, with a partial file); the others start and ask
    for the metadata; then the first is SIGKILLed. One of the others must continue its
    partial file with a Range request, and no file may be fetched from its start twice.
    """
    files = campaign_files(rng)
    repo = hub.repos.get(REPO) or hub.add_repo(REPO, {})
    commit = repo.commit(files)
    result = ConcurrentRound(commit=commit, processes=processes, killed=kill_first)
    hub.reset_counts()
    start = time.monotonic()
    ref = f"hf:{REPO}@{commit}"
    procs: list[subprocess.Popen[str]] = []
    if kill_first:
        weights = files["model.safetensors"]
        held = len(weights) // 4
        hub.knobs.stall, hub.knobs.stall_after = {"body"}, held
        # Held until killed, however long the others take to start on a loaded machine:
        # its own read timeout must not end it first (and let another in while stalled).
        first = pull_process(ref, {**env, "MODELPORT_HTTP_TIMEOUT": "600"})
        deadline = time.monotonic() + 120
        # Sent up to the stall (the client may keep the last bytes in a write buffer).
        while hub.bytes_sent["model.safetensors"] < held and time.monotonic() < deadline:
            if first.poll() is not None:
                result.problems.append(f"the first pull ended: {first.communicate()[1]}")
                break
            time.sleep(0.005)
        procs = [pull_process(ref, env) for _ in range(processes - 1)]
        while time.monotonic() < deadline:
            asked = sum(1 for _, path, _ in hub.requests if path.startswith("/api/models/"))
            if asked >= processes:
                break
            time.sleep(0.01)
        time.sleep(0.3)  # on their way to the locks the first one holds
        hub.knobs.stall = set()  # what the others ask for now is answered
        ended_early = first.poll() is not None
        first.send_signal(signal.SIGKILL)
        _, err = first.communicate()
        if ended_early:
            result.problems.append(f"the first pull ended before its kill: {err.strip()}")
    else:
        hub.knobs.bytes_per_second = bytes_per_second
        procs = [pull_process(ref, env) for _ in range(processes)]
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        if proc.returncode != 0:
            result.problems.append(f"a pull failed: {err.strip()}")
        elif not out.strip().endswith(commit):
            result.problems.append(f"a pull printed {out.strip()!r}")
    result.wall_s = time.monotonic() - start
    hub.knobs.bytes_per_second = None

    # Bodies only: an LFS file's /resolve/ answer is a redirect to its /cdn-lfs/ body.
    fresh: Counter[str] = Counter()
    lfs = {
        hashlib.sha256(data).hexdigest(): path for path, data in files.items() if is_lfs(path, data)
    }
    for method, path, sent_range in hub.requests:
        if method != "GET" or sent_range is not None:
            continue
        if path.startswith("/cdn-lfs/"):
            name = lfs.get(path.rsplit("/", 1)[-1])
        elif "/resolve/" in path:
            name = path.split("/resolve/", 1)[1].split("/", 1)[1]
            name = None if name in lfs.values() else name
        else:
            continue
        if name in files:
            fresh[name] += 1
    result.gets = {path: hub.file_gets[path] for path in files}
    result.fresh_gets = {path: fresh[path] for path in files}
    for path in files:
        if result.fresh_gets[path] != 1:
            result.problems.append(f"{path} fetched from its start {result.fresh_gets[path]} times")
    if kill_first:
        # One continuation, from what the killed process had written (at most what it got).
        resumed = [r for _, p, r in hub.requests if r is not None and p.startswith("/cdn-lfs/")]
        starts = [int(r[len("bytes=") : -1]) for r in resumed]
        if len(starts) != 1 or not 0 < starts[0] <= len(files["model.safetensors"]) // 4:
            result.problems.append(f"the killed download was continued with {resumed}")
    api.reset()
    model = api.get_store().get("hf", REPO, commit)
    for path, data in files.items():
        if (model.path / path).read_bytes() != data:
            result.problems.append(f"{path} holds the wrong bytes")
    report = api.verify_store()
    if not report.ok:
        result.problems.append(f"store damaged: {report}")
    return result


@dataclass
class ApiFuzz:
    """Schemathesis over every operation an app's OpenAPI document lists."""

    cases: dict[str, int] = field(default_factory=dict)  # "METHOD /path" → requests sent
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # "op: failure" → its report
    seconds: float = 0.0


# A request the schema accepts may still name a model that does not exist (404), match
# several (409) or carry a value that cannot be used (400, the project's answer instead of
# 422): accepted answers. A 422 to a schema-valid request is a broken promise.
#: What a schema-valid request may be answered. 503 too: every hub of the test home is a
#: closed port, and a route that resolves a name to a hub model must say it cannot reach it.
_ACCEPTED = ["2xx", "400", "404", "409", "503"]


def fuzz_openapi(app: Any, *, examples: int) -> ApiFuzz:
    """Send ``examples`` schema-valid and ``examples`` schema-invalid requests to every
    operation of the ASGI ``app``, with schemathesis' checks: no 5xx, every status and
    body as documented, valid requests accepted, invalid ones refused."""
    import schemathesis
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.core.failures import FailureGroup

    config = schemathesis.Config.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {"expected-statuses": _ACCEPTED},
                # 5xx are counted below: only 503 (a hub out of reach) may occur, never 500.
                "not_a_server_error": {"enabled": False},
            }
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    result = ApiFuzz()
    began = time.monotonic()
    for loaded in schema.get_all_operations():
        if not hasattr(loaded, "ok"):
            result.failures[f"schema: {loaded.err()}"] = str(loaded.err())
            continue
        operation = loaded.ok()
        label = operation.label
        result.cases.setdefault(label, 0)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode)

            @settings(
                max_examples=examples,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
            )
            @given(case=strategy)
            def send(case: Any) -> None:
                label = case.operation.label
                result.cases[label] += 1
                try:
                    response = case.call_and_validate()
                except FailureGroup as group:
                    for failure in group.exceptions:
                        result.failures.setdefault(f"{label}: {failure.title}", str(group))
                    return
                result.statuses[response.status_code] += 1

            # An operation without parameters has nothing to make invalid.
            with contextlib.suppress(Unsatisfiable):
                send()
    result.seconds = time.monotonic() - began
    return result
