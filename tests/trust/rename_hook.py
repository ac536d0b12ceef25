"""Run the ``agentjournal`` command with a hook on every rename into one folder: right after
the N-th rename lands there, the process SIGKILLs itself (``--then kill``) or prints
``PAUSED`` and waits for a line on stdin (``--then pause``). With ``--then count`` nothing
happens. Every mode prints ``RENAMES <n>`` (renames into the folder seen) on stdout last.

    python rename_hook.py --dir STORE/events/checkpoints --at 2 --then kill -- \
        --store STORE doctor --redact 5 --reason x

The hook wraps os.replace and os.rename, so it sees the rename whatever code makes it; a
kill there is a kill -9 after the rename's effect, before anything after it.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    split = argv.index("--")
    options = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
    folder = os.path.realpath(options["--dir"])
    at, then = int(options["--at"]), options["--then"]
    seen = 0
    real_replace, real_rename = os.replace, os.rename

    def landed(dst: object) -> None:
        nonlocal seen
        if os.path.dirname(os.path.realpath(os.fspath(dst))) != folder:  # type: ignore[call-overload]
            return
        seen += 1
        if seen != at:
            return
        if then == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif then == "pause":
            os.write(1, b"\nPAUSED\n")
            sys.stdin.readline()

    def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
        real_replace(src, dst, *args, **kwargs)  # type: ignore[arg-type]
        landed(dst)

    def rename(src: object, dst: object, *args: object, **kwargs: object) -> None:
        real_rename(src, dst, *args, **kwargs)  # type: ignore[arg-type]
        landed(dst)

    os.replace, os.rename = replace, rename
    from agentjournal.cli import main as cli_main

    try:
        code = cli_main(argv[split + 1:])
    finally:
        os.write(1, f"\nRENAMES {seen}\n".encode())
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
