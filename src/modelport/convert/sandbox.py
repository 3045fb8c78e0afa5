"""Run third-party conversion tools so that they leave nothing behind.

Exporters and ONNX Runtime's tools print deprecation warnings, tracer warnings and
quantizer hints on stderr, and ONNX Runtime's symbolic shape inference saves
``sym_shape_infer_temp.onnx`` and ``<uuid>.data`` into the working directory when it
cannot infer every shape. Inside ``contained()`` the working directory is a scratch
folder that is removed afterwards, warnings and stderr (file descriptor 2, so C++ log
lines are caught too) go to the debug log, and the user's terminal and folders stay
clean. Our own errors still reach the user: they are raised, not printed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["contained"]

logger = logging.getLogger("modelport.third_party")

# The working directory and file descriptor 2 belong to the whole process: one block at a
# time, and nested blocks (an export inside a conversion) reuse the outer one.
_lock = threading.RLock()
_depth = 0


@contextlib.contextmanager
def contained(debug_log: Path | None = None) -> Iterator[None]:
    """Run the block in a scratch working directory, its noise sent to ``debug_log``."""
    global _depth
    with _lock:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        _depth = 1
        try:
            with _scratch_cwd(), _noise_to(debug_log):
                yield
        finally:
            _depth = 0


@contextlib.contextmanager
def _scratch_cwd() -> Iterator[None]:
    try:
        previous: str | None = os.getcwd()
    except OSError:  # the working directory was deleted: nothing to go back to
        previous = None
    scratch = tempfile.mkdtemp(prefix="modelport-convert-")
    os.chdir(scratch)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.chdir(previous or tempfile.gettempdir())
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _noise_to(debug_log: Path | None) -> Iterator[None]:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with tempfile.TemporaryFile() as captured, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = _redirect_fd(2, captured.fileno())
        root = logging.getLogger()
        # A root logger without handlers makes `logging.warning()` install one on stderr
        # for good (basicConfig); a handler of our own for the block prevents that.
        handler = _Forward()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            lines = [
                f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught
            ]
            lines += handler.lines
            if text.strip():
                lines.append(text.rstrip())
            _write(debug_log, lines)


def _redirect_fd(fd: int, target: int) -> int | None:
    try:
        saved = os.dup(fd)
    except OSError:  # no stderr at all (a daemon): nothing to protect
        return None
    os.dup2(target, fd)
    return saved


class _Forward(logging.Handler):
    """Collects third-party log records of the block (ours propagate as usual)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("modelport") and record.name != logger.name:
            return
        with contextlib.suppress(Exception):
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _write(debug_log: Path | None, lines: list[str]) -> None:
    for line in lines:
        logger.debug(line)
    if debug_log is None or not lines:
        return
    with contextlib.suppress(OSError):
        debug_log.parent.mkdir(parents=True, exist_ok=True)
        with debug_log.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
