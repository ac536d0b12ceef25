"""Child processes started together: each prints READY once open, all get GO at once, each
prints one JSON line with its result. Bounded waits; a child that dies is an error that
carries its stderr."""

from __future__ import annotations

import os
import selectors
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson

from .workload import PYTHON, python_env

WORKER = Path(__file__).resolve().parent / "worker.py"
READY_WAIT_S = 120.0  # start-up (imports, store open) of many children on a loaded machine
FINISH_MARGIN_S = 120.0  # beyond the run time, for the last call and the exit


class ChildFailed(RuntimeError):
    pass


def run_together(argvs: list[list[str]], run_s: float) -> list[dict[str, Any]]:
    """Start one worker per argv, wait until all are READY, send GO, collect results."""
    with tempfile.TemporaryFile() as errors:
        children = [subprocess.Popen([PYTHON, str(WORKER), *argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=errors, env=python_env())
                    for argv in argvs]
        try:
            for child in children:
                _expect_ready(child, errors)
            for child in children:
                assert child.stdin is not None
                child.stdin.write(b"GO\n")
                child.stdin.flush()
            return [_result(child, run_s + FINISH_MARGIN_S, errors) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                child.wait()
                for pipe in (child.stdin, child.stdout):
                    if pipe is not None:
                        pipe.close()


def _expect_ready(child: subprocess.Popen[bytes], errors: Any) -> None:
    assert child.stdout is not None
    line = _readline(child, READY_WAIT_S)
    if line.strip() != b"READY":
        raise ChildFailed(f"worker did not start: {line!r}\n{_tail(errors)}")


def _result(child: subprocess.Popen[bytes], wait_s: float, errors: Any) -> dict[str, Any]:
    line = _readline(child, wait_s)
    if child.wait(timeout=wait_s) != 0 or not line.startswith(b"{"):
        raise ChildFailed(f"worker failed ({child.returncode}): {line!r}\n{_tail(errors)}")
    result: dict[str, Any] = orjson.loads(line)
    return result


def _readline(child: subprocess.Popen[bytes], wait_s: float) -> bytes:
    """One line of the child's stdout, or b"" if it exits or stays silent ``wait_s``."""
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=wait_s):
            child.kill()
            return b""
    return child.stdout.readline()


def _tail(errors: Any) -> str:
    errors.flush()
    errors.seek(0)
    return errors.read()[-3000:].decode("utf-8", "replace") + f" (pid {os.getpid()})"
