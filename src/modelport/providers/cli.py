"""Running a vendor's CLI a user is signed in to (``claude -p``, ``gemini -p``) as a provider.

The CLI is found on ``PATH``; its prompt goes in as an argument (never through a shell),
its answer comes back as JSON or JSON lines on stdout. It runs in an empty private folder,
never the user's. A CLI that fails, times out or
prints what is not JSON is a ``ProviderError`` naming the CLI, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from modelport.errors import ProviderError, ProviderTimeoutError

__all__ = ["cli_json", "cli_json_lines", "find_cli"]

#: The most bytes of stderr quoted in an error.
_STDERR_SHOWN = 300


def find_cli(name: str) -> str | None:
    """The path of an executable on ``PATH``, or None."""
    return shutil.which(name)


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


async def _start(
    provider: str, argv: Sequence[str], env: Mapping[str, str] | None
) -> tuple[Any, str]:
    # Vendor CLIs are agents: they read instruction files (CLAUDE.md, GEMINI.md) and may use
    # file tools in their working directory. An empty private folder keeps the user's
    # folder out of the prompt and out of reach.
    workdir = tempfile.mkdtemp(prefix="modelport-cli-")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(env),
            cwd=workdir,
        )
    except OSError as e:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ProviderError(
            f"`{os.path.basename(argv[0])}` cannot be started: {e.strerror or e}.",
            provider=provider,
            hint="Check the CLI's installation, or use the API with `--access api`.",
        ) from None
    return process, workdir


async def _end(process: Any, workdir: str) -> None:
    """Remove the CLI's folder, then kill the CLI if it still runs and reap it."""
    shutil.rmtree(workdir, ignore_errors=True)  # first: a cancelled wait below cannot skip it
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _failed(provider: str, argv: Sequence[str], code: int | None, stderr: bytes) -> ProviderError:
    said = stderr.decode(errors="replace").strip()[-_STDERR_SHOWN:]
    return ProviderError(
        f"`{os.path.basename(argv[0])}` exited with status {code}" + (f": {said}" if said else "."),
        provider=provider,
        hint="Run it by hand to see why, or use the API with `--access api`.",
    )


def _said(stdout: bytes) -> bytes:
    """The message a CLI printed as JSON (``result`` or ``error``) when it failed."""
    try:
        document = json.loads(stdout)
    except ValueError:
        return b""
    if not isinstance(document, dict):
        return b""
    said = document.get("result") or document.get("error")
    if isinstance(said, dict):
        said = said.get("message")
    return str(said).encode() if said else b""


async def cli_json(
    provider: str,
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Run a CLI to the end and parse its stdout as one JSON document."""
    process, workdir = await _start(provider, argv, env)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        raise ProviderTimeoutError(
            f"`{os.path.basename(argv[0])}` gave no answer within {timeout:g} s.",
            provider=provider,
            hint="Raise MODELPORT_PROVIDER_TIMEOUT, or use the API with `--access api`.",
        ) from None
    finally:
        await _end(process, workdir)
    if process.returncode != 0:
        # Some CLIs (claude -p) say why they failed as JSON on stdout, not on stderr.
        raise _failed(provider, argv, process.returncode, _said(stdout) or stderr)
    try:
        return json.loads(stdout)
    except ValueError:
        raise ProviderError(
            f"`{os.path.basename(argv[0])}` printed something that is not JSON.",
            provider=provider,
            hint="Check that the CLI is recent enough to print its answer as JSON.",
        ) from None


async def cli_json_lines(
    provider: str,
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Any]:
    """Run a CLI and yield each JSON line it prints as it prints it.

    ``timeout`` bounds the wait for each line; the process is killed when the caller stops
    early.
    """
    process, workdir = await _start(provider, argv, env)
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        while True:
            try:
                line = await asyncio.wait_for(process.stdout.readline(), timeout)
            except TimeoutError:
                raise ProviderTimeoutError(
                    f"`{os.path.basename(argv[0])}` printed nothing for {timeout:g} s.",
                    provider=provider,
                    hint="Raise MODELPORT_PROVIDER_TIMEOUT, or use the API with `--access api`.",
                ) from None
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            try:
                yield json.loads(text)
            except ValueError:
                raise ProviderError(
                    f"`{os.path.basename(argv[0])}` printed a line that is not JSON.",
                    provider=provider,
                    hint="Check that the CLI is recent enough to stream its answer as JSON lines.",
                ) from None
        code = await process.wait()
        if code != 0:
            raise _failed(provider, argv, code, await process.stderr.read())
    finally:
        await _end(process, workdir)
